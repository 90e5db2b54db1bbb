"""A fresh database of the local PostgreSQL for one test, dropped after it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from support.services import POSTGRES_USER, require_port

POSTGRES = "127.0.0.1", 5432


@asynccontextmanager
async def fresh_postgresql() -> AsyncIterator[str]:
    """The SQLAlchemy URL of a new, empty database (skips when PostgreSQL is not up)."""
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
