from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from support.services import POSTGRES_USER, require_port
from triggerfish.store import SqlStore

POSTGRES = "127.0.0.1", 5432


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


@asynccontextmanager
async def fresh_postgresql() -> AsyncIterator[str]:
    require_port(*POSTGRES, "PostgreSQL")
    import asyncpg

    name = f"tf_store_{uuid.uuid4().hex[:12]}"
    host, port = POSTGRES
    admin = await asyncpg.connect(host=host, port=port, user=POSTGRES_USER, database="test")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgresql+asyncpg://{POSTGRES_USER}@{host}:{port}/{name}"
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
