"""Access keys: issued, verified by secret, revoked; secrets encrypted at rest."""

from __future__ import annotations

import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from triggerfish.errors import ConfigError, NotFoundError
from triggerfish.security.access_keys import AccessKeys, function_credentials
from triggerfish.store import SqlStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    async with SqlStore(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}") as opened:
        yield opened


async def test_create_look_up_and_revoke(store: SqlStore, tmp_path: Path) -> None:
    keys = AccessKeys(store, tmp_path / "access-keys.key")
    await keys.start()
    key_id, secret = await keys.create("laptop")
    assert key_id.startswith("TF")
    assert len(key_id) == 20
    assert len(secret) == 40
    # A fresh registry (another process) reads it back through the key file.
    other = AccessKeys(store, tmp_path / "access-keys.key")
    assert await other.secret(key_id) == secret
    stored = await store.documents.get("access-key", key_id)
    assert secret not in str(stored)
    assert stat.S_IMODE((tmp_path / "access-keys.key").stat().st_mode) == 0o600
    [listed] = await keys.list()
    assert (listed.id, listed.name, listed.revoked) == (key_id, "laptop", False)
    await keys.revoke(key_id)
    assert await keys.secret(key_id) is None
    assert await AccessKeys(store, tmp_path / "access-keys.key").secret(key_id) is None
    with pytest.raises(NotFoundError):
        await keys.revoke("TFNOSUCHKEY000000000")


async def test_a_different_key_file_cannot_read_secrets(store: SqlStore, tmp_path: Path) -> None:
    key_id, _secret = await AccessKeys(store, tmp_path / "one.key").create()
    with pytest.raises(ConfigError, match="cannot be decrypted"):
        await AccessKeys(store, tmp_path / "two.key").secret(key_id)


async def test_a_function_keeps_its_own_key(store: SqlStore, tmp_path: Path) -> None:
    keys = AccessKeys(store, tmp_path / "k")
    first = await function_credentials(keys, "resize")
    assert await function_credentials(keys, "resize") == first
    assert await function_credentials(keys, "notify") != first
    assert {key.function for key in await keys.list()} == {"resize", "notify"}
