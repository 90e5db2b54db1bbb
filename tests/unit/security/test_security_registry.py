"""The token registry over a real store: a token checked once is remembered, and
revoking it takes effect on the very next request all the same."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from triggerfish.errors import AuthError, PermissionDeniedError
from triggerfish.security.registry import TokenRegistry
from triggerfish.store import SqlStore


@pytest.fixture
async def registry(tmp_path: Path) -> AsyncIterator[TokenRegistry]:
    async with SqlStore(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}") as store:
        tokens = TokenRegistry(store, tmp_path / "admin.token")
        await tokens.start()
        yield tokens


async def test_a_revoked_token_is_refused_on_the_next_check(registry: TokenRegistry) -> None:
    text, record = await registry.issue("ci", ["invoke"])
    assert registry.authorize(text, "invoke").id == record.id
    assert registry.authorize(text, "invoke").id == record.id  # the remembered check
    await registry.revoke(record.id)
    with pytest.raises(AuthError, match="has been revoked"):
        registry.authorize(text, "invoke")


async def test_a_remembered_token_still_needs_the_scope(registry: TokenRegistry) -> None:
    text, _record = await registry.issue("reader", ["read"])
    registry.authorize(text, "read")
    with pytest.raises(PermissionDeniedError, match="lacks the 'invoke' scope"):
        registry.authorize(text, "invoke")


async def test_a_wrong_secret_for_a_known_id_is_refused(registry: TokenRegistry) -> None:
    text, _record = await registry.issue("ci", ["invoke"])
    registry.authorize(text, "invoke")
    forged = text[:-4] + ("AAAA" if not text.endswith("AAAA") else "BBBB")
    with pytest.raises(AuthError, match="unknown API token"):
        registry.authorize(forged, "invoke")
