"""Invocation records reach the store in a few large batches while invocations keep
coming, and none is lost or written twice; while the store is away they wait (up to a
limit, past which the oldest are dropped with a warning) and are written once it is
back."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from support.waiting import until
from triggerfish.errors import AdapterError
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
        await asyncio.sleep(0.002)  # stays: it paces the invocations
    await recorder.stop()
    # About one write per turn (0.1 s and the 0.05 s write): 5 or 6, where writing
    # what came meanwhile at once, one write after another, made 10.
    assert store.writes <= 7
    stored = await store.list_invocations("noop", limit=len(made) + 10)
    assert sorted(record.id for record in stored) == sorted(made)


class AwayStore(SqlStore):
    """The real SQLite store, whose record writes fail while ``away``; with
    ``lose_answer``, the next write is committed but fails as if its answer was lost.
    ``tries`` counts the writes asked for."""

    away = False
    lose_answer = False
    tries = 0

    async def record_invocations(self, records: list[InvocationRecord]) -> None:  # type: ignore[override]
        self.tries += 1
        if self.away:
            raise AdapterError("cannot reach the store: connection refused")
        await super().record_invocations(records)
        if self.lose_answer:
            self.lose_answer = False
            raise AdapterError("store error: connection is closed")


@pytest.fixture
async def away_store(tmp_path: Path) -> AsyncIterator[AwayStore]:
    store = AwayStore(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}")
    await store.start()
    yield store
    await store.stop()


def record(recorder: Recorder, tmp_path: Path) -> str:
    spec = FunctionSpec("noop", "0123456789ab", tmp_path, "main.handler")
    result = InvocationResult(new_id(), "ok", started_at=time.time())
    return recorder.record(spec, result, trigger=None, event_ids=(), attempt=1,
                           request_bytes=2).id  # fmt: skip


async def stored_ids(store: SqlStore) -> list[str]:
    return sorted(r.id for r in await store.list_invocations("noop", limit=10_000))


async def until_stored(store: SqlStore, ids: list[str]) -> None:
    started = time.monotonic()
    while await stored_ids(store) != sorted(ids):
        assert time.monotonic() - started < 5.0, "records not written within 5 s"
        await asyncio.sleep(0.02)


async def test_a_flush_waits_for_the_write_already_under_way(
    store: CountingStore, tmp_path: Path
) -> None:
    recorder = Recorder(store, interval=0.01)
    await recorder.start()
    try:
        made = [record(recorder, tmp_path) for _ in range(10)]
        # The flusher took them and writes them (slowly): none waits in the buffer.
        await until(lambda: store.writes == 1, what="the flusher's write")
        assert recorder.pending == 0
        await recorder.flush()
        assert await stored_ids(store) == sorted(made)
    finally:
        await recorder.stop()


async def test_records_wait_for_a_store_that_is_away_and_are_written_once_back(
    away_store: AwayStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "triggerfish.observe")
    recorder = Recorder(away_store, interval=0.01, retry=0.05)
    await recorder.start()
    try:
        away_store.away = True
        made = [record(recorder, tmp_path) for _ in range(50)]
        await until(lambda: away_store.tries >= 3, what="several failed tries")
        assert recorder.pending == 50
        away_store.away = False
        await until_stored(away_store, made)
    finally:
        await recorder.stop()
    messages = [r.getMessage() for r in caplog.records]
    assert sum("cannot write invocation records" in m for m in messages) == 1
    assert any("invocation records written again" in m for m in messages)


async def test_past_its_limit_the_oldest_records_are_dropped_with_a_warning(
    away_store: AwayStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder(away_store, interval=0.01, batch=10, limit=30, retry=0.05)
    await recorder.start()
    try:
        away_store.away = True
        made = [record(recorder, tmp_path) for _ in range(45)]
        assert recorder.pending == 30
        assert recorder.dropped == 15
        away_store.away = False
        await until_stored(away_store, made[15:])  # the newest 30
    finally:
        await recorder.stop()
    assert any("invocation record(s), the oldest" in r.getMessage() for r in caplog.records)


async def test_a_batch_committed_before_its_answer_was_lost_is_not_written_twice(
    away_store: AwayStore, tmp_path: Path
) -> None:
    recorder = Recorder(away_store, interval=0.01, retry=0.05)
    away_store.lose_answer = True
    first = [record(recorder, tmp_path) for _ in range(5)]
    await recorder.start()
    try:
        await until(lambda: away_store.tries >= 2, what="the batch stored, then tried again")
        more = [record(recorder, tmp_path) for _ in range(3)]
        await until_stored(away_store, first + more)
    finally:
        await recorder.stop()
    assert await stored_ids(away_store) == sorted(first + more)


async def test_a_node_that_stops_while_the_store_is_away_says_what_it_did_not_write(
    away_store: AwayStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder(away_store, interval=0.01, retry=0.05)
    await recorder.start()
    away_store.away = True
    for _ in range(3):
        record(recorder, tmp_path)
    await recorder.stop()  # does not raise: the node stops all the same
    assert any("3 invocation record(s) not written" in r.getMessage() for r in caplog.records)
