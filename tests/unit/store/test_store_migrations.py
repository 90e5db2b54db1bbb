"""The store's schema comes from its migrations: a new database reaches the newest
revision with exactly the tables of ``schema.py``; a data directory made by
Triggerfish 0.1.0 (before migrations) opens with everything in it; a database that a
newer Triggerfish upgraded is refused with a message that says what to do."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from triggerfish.errors import AdapterError, ConfigError
from triggerfish.security.access_keys import AccessKeys
from triggerfish.store import SqlStore
from triggerfish.store import schema as t
from triggerfish.store.migrations import head

RELEASE_0_1_0 = Path(__file__).parents[2] / "fixtures" / "datadirs" / "0.1.0"
# What tests/fixtures/datadirs/0.1.0/README.md says was made there.
VALIDATE_1, VALIDATE_2, FULFIL_1 = "0747f3878c81", "a4d92ef5ac04", "4dc127fbe4da"
FIXTURE_KEY = "TF3SEN182C68PQRVBUGB", "UT7VDlwwQq/mSjLo1TB9SVaUGhKB+YsArEjciN0a"


async def schema_differences(url: str) -> list[Any]:
    """What Alembic's autogenerate would change to make the database match ``schema.py``."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:

            def compare(connection: sa.Connection) -> list[Any]:
                context = MigrationContext.configure(connection, opts={"compare_type": True})
                return list(compare_metadata(context, t.metadata))

            return await conn.run_sync(compare)
    finally:
        await engine.dispose()


async def execute(url: str, statement: str) -> Any:
    """Run one statement in a transaction of its own; the first column of its first row."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            result = await conn.execute(sa.text(statement))
            return result.scalar() if result.returns_rows else None
    finally:
        await engine.dispose()


async def test_a_new_database_reaches_head_with_the_tables_of_schema_py(store: SqlStore) -> None:
    assert head() == "0009_durable"
    assert await store.schema_revision() == head()
    assert await schema_differences(store.url) == []


async def test_starting_again_at_head_changes_nothing(store: SqlStore) -> None:
    await store.put_function_version("resize", {"handler": "main.h"}, "a" * 64, "a" * 12)

    async with SqlStore(store.url) as again:
        assert await again.schema_revision() == head()
        assert [f.name for f in await again.list_functions()] == ["resize"]


async def test_nodes_starting_together_upgrade_a_new_database_once(postgresql_url: str) -> None:
    # Only PostgreSQL is shared by several nodes; an SQLite store belongs to one node.
    database_url = postgresql_url
    nodes = [SqlStore(database_url) for _ in range(4)]
    try:
        await asyncio.gather(*(node.start() for node in nodes))
        assert {await node.schema_revision() for node in nodes} == {head()}
    finally:
        await asyncio.gather(*(node.stop() for node in nodes))
    assert await schema_differences(database_url) == []


async def test_a_store_upgraded_by_a_newer_release_is_refused(store: SqlStore) -> None:
    await store.stop()
    await execute(store.url, "UPDATE alembic_version SET version_num = '0099_future'")

    with pytest.raises(ConfigError) as raised:
        await store.start()

    message = str(raised.value)
    assert "schema revision 0099_future" in message
    assert "Upgrade Triggerfish" in message
    # The store did not stay half-open, and the database was left as it was.
    with pytest.raises(AdapterError, match="not started"):
        await store.list_functions()
    assert await execute(store.url, "SELECT version_num FROM alembic_version") == "0099_future"


async def test_some_tables_without_a_revision_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE tf_functions (name VARCHAR(64) PRIMARY KEY)")
    db.close()

    with pytest.raises(ConfigError, match="not made by Triggerfish"):
        await SqlStore(f"sqlite+aiosqlite:///{path}").start()


def copy_release_0_1_0(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    for name in ("store.db", "access-keys.key"):
        shutil.copyfile(RELEASE_0_1_0 / name, data / name)
    with sqlite3.connect(f"file:{data / 'store.db'}?mode=ro", uri=True) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    db.close()
    assert "tf_functions" in tables
    assert "alembic_version" not in tables  # made before migrations
    return data


async def test_a_data_directory_of_release_0_1_0_opens_with_everything_in_it(
    tmp_path: Path,
) -> None:
    data = copy_release_0_1_0(tmp_path)
    url = f"sqlite+aiosqlite:///{data / 'store.db'}"

    async with SqlStore(url) as store:
        assert await store.schema_revision() == head()
        assert await schema_differences(url) == []

        assert [f.name for f in await store.list_functions()] == ["fulfil", "validate"]
        validate = await store.list_versions("validate")
        assert [(v.number, v.version) for v in validate] == [(1, VALIDATE_1), (2, VALIDATE_2)]
        assert [v.config["memory"] for v in validate] == [128, 256]
        assert validate[0].config["handler"] == "main.handler"
        assert validate[0].config["async_retry"] == {"max_attempts": 3, "max_age": 21600}
        assert validate[1].digest.startswith(VALIDATE_2)
        assert [(v.number, v.version) for v in await store.list_versions("fulfil")] == [
            (1, FULFIL_1)
        ]

        aliases = {(a.function, a.name): a.version for a in await store.list_aliases("validate")}
        assert aliases == {("validate", "live"): VALIDATE_2, ("validate", "stable"): VALIDATE_1}
        assert (await store.resolve("validate", "stable")).number == 1
        assert (await store.resolve("fulfil")).version == FULFIL_1

        triggers = {trigger.id: trigger for trigger in await store.list_triggers()}
        assert sorted(triggers) == ["fulfil.orders", "validate.orders"]
        assert triggers["validate.orders"].config["pattern"] == {"type": ["order.created"]}

        [token] = await store.list_tokens()
        assert (token.name, token.scopes, token.revoked) == ("admin", ("admin",), False)

        keys = await store.documents.list("access-key")
        assert sorted(body["name"] for body in keys.values()) == [
            "fixture",
            "function fulfil",
            "function validate",
        ]
        access_keys = AccessKeys(store, data / "access-keys.key")
        assert await access_keys.secret(FIXTURE_KEY[0]) == FIXTURE_KEY[1]

        records = await store.list_invocations(after="0")
        assert len(records) == 5
        assert {record.status for record in records} == {"ok"}
        assert [(r.function, r.trigger) for r in records] == [
            ("validate", "validate.orders"),
            ("fulfil", "fulfil.orders"),
            ("validate", "validate.orders"),
            ("validate", None),
            ("fulfil", "fulfil.orders"),
        ]
        assert records[0].event_ids == ("order-A-1",)
        assert records[0].result == b'{"accepted":true,"total":25.0}'
        assert records[3].version == VALIDATE_1  # invoked as validate:stable
        assert (await store.invocation_stats("validate"))["ok"] == 3

        # It takes new writes, in the old tables and in the new ones.
        digest = "b" * 64
        added = await store.put_function_version("validate", {"memory": 512}, digest, digest[:12])
        assert added.number == 3
        assert await store.cluster.bump_generation() == 1

    async with SqlStore(url) as reopened:
        assert len(await reopened.list_versions("validate")) == 3
