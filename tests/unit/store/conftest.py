from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from support.services import POSTGRES_USER, require_port
from triggerfish.store import SqlStore

POSTGRES = "127.0.0.1", 5432


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlStore]:
    """The store on an SQLite file, and on a fresh database of the local PostgreSQL."""
    if request.param == "sqlite":
        async with SqlStore(f"sqlite+aiosqlite:///{tmp_path / 'data' / 'store.db'}") as opened:
            yield opened
        return
    require_port(*POSTGRES, "PostgreSQL")
    import asyncpg

    name = f"tf_store_{uuid.uuid4().hex[:12]}"
    host, port = POSTGRES
    admin = await asyncpg.connect(host=host, port=port, user=POSTGRES_USER, database="test")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            url = f"postgresql+asyncpg://{POSTGRES_USER}@{host}:{port}/{name}"
            async with SqlStore(url) as opened:
                yield opened
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
