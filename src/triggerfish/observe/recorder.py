"""Invocation records: every invocation, written to the store in batches.

Records are buffered and flushed every ``interval`` seconds or ``batch`` records, so
recording costs the hot path an append, not a transaction; a flush is one transaction
with one prepared statement for the whole batch (``SqlStore.record_invocations``). A
record is a report of what happened, not an event: the last ``interval`` of records
(0.2 s) can be lost in a crash, never an event.

Each record also feeds the node's ``Metrics`` at once, when it is given one, so the
Prometheus counters move with every invocation, before the record is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from triggerfish.observe.metrics import Metrics
from triggerfish.runtime.base import FunctionSpec, InvocationResult
from triggerfish.store.records import InvocationRecord
from triggerfish.store.sql import SqlStore

log = logging.getLogger("triggerfish.observe")


class Recorder:
    def __init__(
        self,
        store: SqlStore,
        *,
        interval: float = 0.2,
        batch: int = 1000,
        metrics: Metrics | None = None,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._interval = interval
        self._batch = batch
        self._buffer: list[InvocationRecord] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="recorder")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    def record(
        self,
        spec: FunctionSpec,
        result: InvocationResult,
        *,
        trigger: str | None,
        event_ids: Sequence[str],
        attempt: int,
        request_bytes: int,
    ) -> InvocationRecord:
        if not result.memory_size_mb:
            result.memory_size_mb = spec.memory
        record = InvocationRecord.from_result(
            result,
            function=spec.function,
            version=spec.version,
            trigger=trigger,
            event_ids=tuple(event_ids),
            attempt=attempt,
            request_bytes=request_bytes,
        )
        self._buffer.append(record)
        if self._metrics is not None:
            self._metrics.observe(record)
        if len(self._buffer) >= self._batch:
            self._wake.set()
        return record

    async def flush(self) -> None:
        """Write every buffered record, also those that come while it writes."""
        while self._buffer:
            await self._write_some(len(self._buffer))

    async def _write_some(self, count: int) -> None:
        """Write the first ``count`` buffered records, ``batch`` at a time."""
        while count > 0 and self._buffer:
            batch = self._buffer[: min(count, self._batch)]
            del self._buffer[: len(batch)]
            count -= len(batch)
            try:
                # Shielded: a stop that cancels the flusher lets a write under way finish,
                # so the final flush never writes the same records twice.
                await asyncio.shield(self._store.record_invocations(batch))
            except asyncio.CancelledError:
                raise
            except Exception:
                self._buffer[:0] = batch  # kept for the next try
                raise

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
            try:
                # What is buffered now; records that come during the write wait for the
                # next turn (or a full batch), so a busy node writes a few large batches
                # a second rather than one small batch after another.
                await self._write_some(len(self._buffer))
            except Exception:
                log.exception("could not write invocation records; will retry")
                await asyncio.sleep(1.0)
