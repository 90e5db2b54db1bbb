"""Tokens and access keys over a real store: permissions, expiry, revocation, a
function's own key following its manifest and dying with it, and last use written at
most once per credential per period."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from triggerfish.errors import AuthError, ConflictError, PermissionDeniedError
from triggerfish.security.access_keys import KIND, AccessKeys
from triggerfish.security.last_use import LastUse
from triggerfish.security.registry import TokenRegistry
from triggerfish.security.sigv4 import S3AuthError
from triggerfish.store import SqlStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    async with SqlStore(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}") as opened:
        yield opened


@pytest.fixture
async def registry(store: SqlStore, tmp_path: Path) -> AsyncIterator[TokenRegistry]:
    tokens = TokenRegistry(store, tmp_path / "admin.token")
    await tokens.start()
    yield tokens
    await tokens.last_use.aclose()  # the writes of last use, before the store closes


@pytest.fixture
async def keys(store: SqlStore, tmp_path: Path) -> AsyncIterator[AccessKeys]:
    made = AccessKeys(store, tmp_path / "access-keys.key")
    await made.start()
    yield made
    await made.last_use.aclose()


# -- tokens -------------------------------------------------------------------------------


async def test_a_token_is_checked_against_the_resource(registry: TokenRegistry) -> None:
    text, _record = await registry.issue("ci", ["publish:orders", "invoke:resize:live"])
    registry.authorize(text, "publish", "orders")
    registry.authorize(text, "invoke", "resize:live")
    with pytest.raises(PermissionDeniedError, match="lacks 'publish' on topic 'payments'"):
        registry.authorize(text, "publish", "payments")
    with pytest.raises(PermissionDeniedError, match="qualifier 2"):
        registry.authorize(text, "invoke", "resize:2")
    with pytest.raises(PermissionDeniedError, match="lacks 'publish' on everything"):
        registry.authorize(text, "publish")  # a route naming no topic needs all of them


async def test_an_expired_token_is_refused_even_once_remembered(
    registry: TokenRegistry, store: SqlStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expires_at = time.time() + 3600
    text, _record = await registry.issue("brief", ["read"], expires_at=expires_at)
    assert registry.authorize(text, "read").expires_at == expires_at  # now remembered
    monkeypatch.setattr(time, "time", lambda: expires_at)  # an hour later
    with pytest.raises(AuthError, match=r"'brief' .* expired at"):
        registry.authorize(text, "read")
    # Its expiry is stored: another node (another registry) refuses it too.
    other = TokenRegistry(store, tmp_path / "admin.token")
    await other.start()
    with pytest.raises(AuthError, match="expired at"):
        other.authorize(text, "read")


async def test_a_token_issued_on_another_node_is_found_in_the_store(
    registry: TokenRegistry, store: SqlStore, tmp_path: Path
) -> None:
    other = TokenRegistry(store, tmp_path / "admin.token")
    await other.start()
    text, record = await other.issue("elsewhere", ["read"])
    with pytest.raises(AuthError, match="unknown API token"):
        registry.principal(text)  # the synchronous hot path knows only its memory
    assert (await registry.principal_async(text)).id == record.id


async def test_the_installation_s_admin_token_cannot_be_revoked(registry: TokenRegistry) -> None:
    [admin] = registry.list()
    with pytest.raises(ConflictError, match="admin token"):
        await registry.revoke(admin.id)


async def test_listing_shows_each_token_s_last_use(registry: TokenRegistry) -> None:
    text, record = await registry.issue("ci", ["read"])
    assert record.id not in await registry.last_use.read()
    before = time.time()
    registry.authorize(text, "read")
    await registry.last_use.aclose()
    assert (await registry.last_use.read())[record.id] >= before


# -- last use -----------------------------------------------------------------------------


async def test_last_use_is_written_at_most_once_per_period(store: SqlStore) -> None:
    now = [1000.0]
    writes: list[str] = []
    plain_put = store.documents.put

    async def counting_put(kind: str, name: str, body: dict[str, object]) -> None:
        writes.append(name)
        await plain_put(kind, name, body)

    store.documents.put = counting_put  # type: ignore[method-assign]
    used = LastUse(store, every=60, clock=lambda: now[0])
    for _ in range(100):
        used.touch("a")
        now[0] += 0.1  # 10 s of uses
    await used.aclose()
    assert writes == ["a"]
    assert (await used.read())["a"] == pytest.approx(1009.9)  # memory knows better
    now[0] += 60
    used.touch("a")
    used.touch("b")
    await used.aclose()
    assert writes == ["a", "a", "b"]
    assert (await LastUse(store).read())["a"] == now[0]  # another node reads the store


# -- access keys --------------------------------------------------------------------------


async def test_a_key_carries_permissions_and_an_expiry(keys: AccessKeys) -> None:
    key_id, secret = await keys.create(
        "uploader", permissions=["s3:write:photos/in/*"], expires_at=time.time() + 3600
    )
    assert await keys.secret(key_id) == secret
    who = keys.principal(key_id)
    assert who.allows("s3:write", "photos/in/a.jpg")
    assert not who.allows("s3:read", "photos/in/a.jpg")
    [listed] = await keys.list()
    assert listed.permissions == ("s3:write:photos/in/*",)
    assert listed.expires_at is not None


async def test_an_expired_key_is_refused_after_its_signature_checked(
    keys: AccessKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    expires_at = time.time() + 3600
    key_id, secret = await keys.create("brief", expires_at=expires_at)
    keys.principal(key_id)
    monkeypatch.setattr(time, "time", lambda: expires_at)  # an hour later
    assert await keys.secret(key_id) == secret  # so the signature can be checked
    with pytest.raises(S3AuthError, match="expired at") as caught:
        keys.principal(key_id)
    assert caught.value.code == "InvalidAccessKeyId"


async def test_keys_without_permissions_may_do_everything_as_they_always_could(
    keys: AccessKeys, store: SqlStore
) -> None:
    key_id, _ = await keys.create("laptop")
    assert keys.principal(key_id).allows("deploy", "anything")
    # One stored before keys had permissions (no "permissions" field) too.
    body = await store.documents.get(KIND, key_id)
    del body["permissions"]
    await store.documents.put(KIND, key_id, body)
    keys.forget()
    await keys.secret(key_id)
    assert keys.principal(key_id).policy.texts == ("admin",)


async def test_a_function_s_key_follows_its_manifest_and_dies_with_it(keys: AccessKeys) -> None:
    key_id, secret = await keys.for_function("thumbs")  # first use, before any deploy
    assert keys.principal(key_id).policy.texts == ()  # nothing by default
    assert await keys.grant_function("thumbs", ["s3:read:photos"]) == (key_id, secret)
    assert keys.principal(key_id).allows("s3:read", "photos/a.jpg")
    await keys.grant_function("thumbs", [])  # a redeploy that grants nothing
    assert not keys.principal(key_id).allows("s3:read", "photos/a.jpg")
    assert await keys.retire_function("thumbs") == (key_id,)
    assert await keys.secret(key_id) is None
    with pytest.raises(S3AuthError, match="does not exist"):
        keys.principal(key_id)
    # Deployed again, it gets a new key: the old one stays dead.
    new_id, _ = await keys.grant_function("thumbs", ["s3:read:photos"])
    assert new_id != key_id
    assert await keys.secret(key_id) is None


async def test_a_change_made_on_another_node_is_read_after_forget(
    keys: AccessKeys, store: SqlStore, tmp_path: Path
) -> None:
    key_id, _ = await keys.grant_function("thumbs", ["s3:read:photos"])
    other = AccessKeys(store, tmp_path / "access-keys.key")
    await other.grant_function("thumbs", [])
    assert keys.principal(key_id).allows("s3:read", "photos/a")  # still in memory
    keys.forget()  # what ``Control.invalidate_local`` does on every change
    await keys.secret(key_id)
    assert not keys.principal(key_id).allows("s3:read", "photos/a")
