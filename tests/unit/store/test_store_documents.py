"""Named JSON documents survive a restart of the store and are kept apart by kind."""

from __future__ import annotations

from pathlib import Path

import pytest

from triggerfish.errors import NotFoundError
from triggerfish.store.sql import SqlStore


async def test_documents_round_trip_and_replace(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    async with SqlStore(url) as store:
        await store.documents.put("webhook", "github", {"topic": "gh", "secret": "s1"})
        await store.documents.put("webhook", "github", {"topic": "gh", "secret": "s2"})
        await store.documents.put("schedule-state", "github", {"last": 5})
    async with SqlStore(url) as store:
        assert await store.documents.get("webhook", "github") == {"topic": "gh", "secret": "s2"}
        assert await store.documents.list("schedule-state") == {"github": {"last": 5}}
        assert await store.documents.delete("webhook", "github") is True
        assert await store.documents.delete("webhook", "github") is False
        assert await store.documents.find("webhook", "github") is None
        with pytest.raises(NotFoundError, match="no webhook named 'github'"):
            await store.documents.get("webhook", "github")
