"""Brings a store's schema to the newest revision this release knows, when the store
starts (``SqlStore.start()``).

- A new database is upgraded from nothing.
- A database made by Triggerfish 0.1.0, the release before migrations, has the tables
  of the baseline revision and no ``alembic_version`` table: it is stamped with the
  baseline, then upgraded.
- A database at a revision this release does not know was upgraded by a newer
  Triggerfish: ``ConfigError`` asking for that upgrade, and nothing is changed.

The upgrade runs in the caller's write transaction, all revisions together: both
PostgreSQL and SQLite roll DDL back, so a revision that fails leaves the schema as it
was. On PostgreSQL the transaction first takes an advisory lock on a fixed key, so
nodes that start together against one database upgrade it one after the other, and the
later ones find it at head; on SQLite the write transaction (``BEGIN IMMEDIATE``)
already keeps every other writer out. A database already at head is only read.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.ext.asyncio import AsyncConnection

from triggerfish import __version__
from triggerfish.errors import AdapterError, ConfigError
from triggerfish.store.migrations.versions import v0001_baseline

log = logging.getLogger("triggerfish.store")

#: The schema of Triggerfish 0.1.0, which made its tables without migrations.
BASELINE: str = v0001_baseline.revision
BASELINE_TABLES: tuple[str, ...] = v0001_baseline.TABLES

#: Where the revisions are: this package, as a resource, so it works from a wheel.
SCRIPT_LOCATION = "triggerfish.store:migrations"
#: The key of the PostgreSQL advisory lock held while the schema is upgraded: the
#: bytes of "tf-store" as a big-endian integer. Fixed for every release.
ADVISORY_LOCK_KEY = 8387441329922077285
#: Alembic's table of the revision a database is at.
VERSION_TABLE = "alembic_version"


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """Alembic's configuration, made in code; ``connection`` is the one ``env.py`` uses."""
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def script_directory() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head() -> str:
    """The newest revision this release knows."""
    revision = script_directory().get_current_head()
    if revision is None:  # pragma: no cover - the package ships its revisions
        raise AdapterError("the store's migrations are missing from this installation")
    return revision


async def upgrade_schema(conn: AsyncConnection, *, where: str) -> None:
    """Upgrade the database of ``conn`` (inside a write transaction that the caller
    commits) to head; ``where`` names the store in messages."""
    if conn.dialect.name == "postgresql":
        # Transaction-scoped: released at commit or rollback, even if this process dies.
        await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(ADVISORY_LOCK_KEY)))
    await conn.run_sync(_upgrade, where)


async def schema_revision(conn: AsyncConnection) -> str | None:
    """The revision the database is at; None before the first upgrade."""
    heads = await conn.run_sync(_current_heads)
    return ", ".join(heads) or None


def _current_heads(connection: sa.Connection) -> tuple[str, ...]:
    # Read here rather than through Alembic's MigrationContext, which logs its setup
    # at INFO: a start that finds the schema at head stays quiet.
    if not sa.inspect(connection).has_table(VERSION_TABLE):
        return ()
    version_num = sa.column("version_num", sa.String)
    found = connection.scalars(sa.select(version_num).select_from(sa.table(VERSION_TABLE)))
    return tuple(sorted(found))


def _upgrade(connection: sa.Connection, where: str) -> None:
    config = alembic_config(connection)
    script = ScriptDirectory.from_config(config)
    newest = script.get_current_head()
    current = _current_heads(connection)
    if current == (newest,):
        return
    known = {revision.revision for revision in script.walk_revisions()}
    unknown = [revision for revision in current if revision not in known]
    if unknown:
        raise ConfigError(
            f"the store at {where} is at schema revision {', '.join(unknown)}, newer than "
            f"this release of Triggerfish ({__version__}) knows (its newest is {newest}): "
            "a newer Triggerfish has upgraded it. Upgrade Triggerfish to open this store."
        )
    try:
        if not current and _made_before_migrations(connection, where):
            command.stamp(config, BASELINE)
            current = (BASELINE,)
        command.upgrade(config, "head")
    except CommandError as exc:
        raise AdapterError(f"cannot upgrade the schema of the store at {where}: {exc}") from exc
    log.info(
        "store schema upgraded from %s to %s (%s)",
        ", ".join(current) or "nothing",
        newest,
        where,
    )


def _made_before_migrations(connection: sa.Connection, where: str) -> bool:
    """True when the database has the tables of the baseline (Triggerfish 0.1.0);
    False when it has none of them."""
    present = set(sa.inspect(connection).get_table_names()) & set(BASELINE_TABLES)
    if not present:
        return False
    missing = sorted(set(BASELINE_TABLES) - present)
    if missing:
        raise ConfigError(
            f"the store at {where} has some of Triggerfish's tables but not "
            f"{', '.join(missing)}, and no schema revision: it was not made by "
            "Triggerfish; point the store at an empty database or at one Triggerfish made"
        )
    return True
