"""The secret store over a real store file: values are sealed (the database never
holds one as written), a sealed value opens only under its own name and key file,
and the rules for names and values are said in their errors."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from triggerfish.errors import ConfigError, PayloadTooLargeError, ValidationError
from triggerfish.security.secrets import KIND, MAX_VALUE_BYTES, SecretStore, check_name
from triggerfish.store import SqlStore

VALUE = "hunter2-correct-horse-battery-staple"


def url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"


def files_holding(folder: Path, text: str) -> list[Path]:
    """The files of ``folder`` (the database, its WAL ...) whose bytes hold ``text``."""
    return [
        path for path in folder.rglob("*") if path.is_file() and text.encode() in path.read_bytes()
    ]


def stored_body(folder: Path, name: str) -> str:
    with sqlite3.connect(folder / "store.db") as db:
        (body,) = db.execute(
            "SELECT body FROM tf_documents WHERE kind = ? AND name = ?", (KIND, name)
        ).fetchone()
    return str(body)


@pytest.fixture
async def secrets(tmp_path: Path) -> AsyncIterator[SecretStore]:
    async with SqlStore(url(tmp_path)) as store:
        made = SecretStore(store, tmp_path / "access-keys.key")
        await made.start()
        yield made


async def test_a_value_comes_back_and_the_database_holds_it_sealed(
    secrets: SecretStore, tmp_path: Path
) -> None:
    info, created = await secrets.put("db-password", VALUE)
    assert created
    assert (info.name, info.created_at) == ("db-password", info.updated_at)
    assert await secrets.value("db-password") == VALUE
    assert await secrets.values(["db-password", "nope"]) == {"db-password": VALUE}
    assert files_holding(tmp_path, VALUE) == []
    body = stored_body(tmp_path, "db-password")
    assert VALUE not in body
    assert set(json.loads(body)) == {"value", "created_at", "updated_at"}


async def test_setting_again_keeps_the_creation_time_and_lists_no_values(
    secrets: SecretStore,
) -> None:
    first, _ = await secrets.put("api.key_1", "one")
    second, created = await secrets.put("api.key_1", "two")
    assert not created
    assert second.created_at == first.created_at
    assert second.updated_at >= first.updated_at
    assert await secrets.value("api.key_1") == "two"
    (listed,) = await secrets.list()
    assert listed == second  # name and times: there is no field for a value
    assert await secrets.delete("api.key_1")
    assert not await secrets.delete("api.key_1")
    assert await secrets.value("api.key_1") is None


async def test_a_sealed_value_copied_onto_another_name_does_not_open(
    secrets: SecretStore, tmp_path: Path
) -> None:
    await secrets.put("a", VALUE)
    with sqlite3.connect(tmp_path / "store.db") as db:
        db.execute(
            "INSERT INTO tf_documents (kind, name, body, updated_at) "
            "SELECT kind, 'b', body, updated_at FROM tf_documents WHERE kind = ? AND name = 'a'",
            (KIND,),
        )
    with pytest.raises(ConfigError, match="does not open the secret 'b'"):
        await secrets.value("b")


async def test_nodes_sharing_a_store_need_the_same_key_file(tmp_path: Path) -> None:
    key = tmp_path / "node1" / "access-keys.key"
    async with SqlStore(url(tmp_path)) as store:
        first = SecretStore(store, key)
        await first.start()
        await first.put("shared", VALUE)
        assert key.stat().st_mode & 0o777 == 0o600

        (tmp_path / "node2").mkdir()
        (tmp_path / "node2" / "access-keys.key").write_bytes(key.read_bytes())
        second = SecretStore(store, tmp_path / "node2" / "access-keys.key")
        await second.start()
        assert await second.value("shared") == VALUE

        stranger = SecretStore(store, tmp_path / "node3" / "access-keys.key")
        with pytest.raises(ConfigError, match="same key file; copy it from the first node"):
            await stranger.start()


@pytest.mark.parametrize("name", ["db-password", "a", "x" * 128, "team.api_key-2", "0day"])
def test_good_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "DB", "-lead", ".hidden", "x" * 129, "has space", "a/b", "é"])
def test_bad_names_say_the_rule(name: str) -> None:
    with pytest.raises(ValidationError, match=r"lowercase letters, digits, '-', '_' or '\.'"):
        check_name(name)


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        ("", ValidationError, "must not be empty"),
        ("a\x00b", ValidationError, "NUL"),
        ("x" * (MAX_VALUE_BYTES + 1), PayloadTooLargeError, "at most 32,768 bytes"),
        ("\udc80", ValidationError, "UTF-8"),
    ],
)
async def test_bad_values_are_refused_without_repeating_them(
    secrets: SecretStore, value: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message) as raised:
        await secrets.put("bad", value)
    if value:
        assert value[:3] not in str(raised.value)
    assert await secrets.list() == []
