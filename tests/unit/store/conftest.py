from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from support.postgresql import fresh_postgresql
from triggerfish.store import SqlStore


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of an empty database: an SQLite file that does not exist yet, or a fresh
    database of the local PostgreSQL (dropped after the test)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'data' / 'store.db'}"
        return
    async with fresh_postgresql() as url:
        yield url


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SqlStore]:
    """The store, started, on the SQLite file and on a fresh PostgreSQL database."""
    async with SqlStore(database_url) as opened:
        yield opened


@pytest.fixture
async def postgresql_url() -> AsyncIterator[str]:
    """The URL of a fresh database of the local PostgreSQL."""
    async with fresh_postgresql() as url:
        yield url
