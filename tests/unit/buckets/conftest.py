from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from support.buckets import BACKENDS, BucketBackend, bucket_backend
from triggerfish.bus.memory import MemoryBus
from triggerfish.sources.buckets import BucketStore


@pytest.fixture
async def bus() -> AsyncIterator[MemoryBus]:
    bus = MemoryBus()
    await bus.start()
    yield bus
    await bus.stop()


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[BucketBackend]:
    """Where the buckets live: the node's SQLite index and files, or a fresh
    PostgreSQL database (dropped after the test)."""
    async with bucket_backend(request.param) as found:
        yield found


@pytest.fixture
async def postgresql_backend() -> AsyncIterator[BucketBackend]:
    async with bucket_backend("postgresql") as found:
        yield found


@pytest.fixture
async def buckets(
    tmp_path: Path, bus: MemoryBus, backend: BucketBackend
) -> AsyncIterator[BucketStore]:
    store = backend.bucket_store(tmp_path / "buckets", bus)
    await store.start()
    yield store
    await store.stop()
