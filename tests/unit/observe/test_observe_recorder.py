"""Invocation records reach the store in a few large batches while invocations keep
coming, and none is lost or written twice."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from triggerfish.observe.recorder import Recorder
from triggerfish.runtime.base import FunctionSpec, InvocationResult
from triggerfish.store import InvocationRecord, SqlStore, new_id


class CountingStore(SqlStore):
    """The real SQLite store, counting its write transactions of records."""

    writes = 0

    async def record_invocations(self, records: list[InvocationRecord]) -> None:  # type: ignore[override]
        self.writes += 1
        await asyncio.sleep(0.05)  # a slow disk: invocations go on meanwhile
        await super().record_invocations(records)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[CountingStore]:
    store = CountingStore(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}")
    await store.start()
    yield store
    await store.stop()


async def test_records_that_come_during_a_write_wait_for_the_next_turn(
    store: CountingStore, tmp_path: Path
) -> None:
    recorder = Recorder(store, interval=0.1, batch=1000)
    await recorder.start()
    spec = FunctionSpec("noop", "0123456789ab", tmp_path, "main.handler")
    made = []
    began = time.monotonic()
    while time.monotonic() - began < 0.6:  # 600 ms of steady invocations
        for _ in range(5):
            result = InvocationResult(new_id(), "ok", started_at=time.time())
            made.append(recorder.record(spec, result, trigger=None, event_ids=(), attempt=1,
                                        request_bytes=2).id)  # fmt: skip
        await asyncio.sleep(0.002)
    await recorder.stop()
    # About one write per turn (0.1 s and the 0.05 s write): 5 or 6, where writing
    # what came meanwhile at once, one write after another, made 10.
    assert store.writes <= 7
    stored = await store.list_invocations("noop", limit=len(made) + 10)
    assert sorted(record.id for record in stored) == sorted(made)
