from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from triggerfish.bus.memory import MemoryBus
from triggerfish.sources.buckets import BucketStore


@pytest.fixture
async def bus() -> AsyncIterator[MemoryBus]:
    bus = MemoryBus()
    await bus.start()
    yield bus
    await bus.stop()


@pytest.fixture
async def buckets(tmp_path: Path, bus: MemoryBus) -> AsyncIterator[BucketStore]:
    store = BucketStore(tmp_path / "buckets", bus)
    await store.start()
    yield store
    await store.stop()
