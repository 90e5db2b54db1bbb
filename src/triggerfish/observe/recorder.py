"""Invocation records: every invocation, written to the store in batches.

Records are buffered and flushed every ``interval`` seconds or ``batch`` records, so
recording costs the hot path an append, not a transaction; a flush is one transaction
with one prepared statement for the whole batch (``SqlStore.record_invocations``). A
record is a report of what happened, not an event: the last ``interval`` of records
(0.2 s) can be lost in a crash, never an event.

While the store cannot be written (a database that went away), records wait in the
buffer and are written once it is back, oldest first: one warning when writing starts
failing, one line when it works again. The buffer holds at most ``limit`` records;
past that the oldest are dropped, and a warning says how many. A batch whose write
failed after it was in fact committed (the connection broke before the answer) comes
back as a conflict: it is then written record by record, skipping those stored.

The events an invocation handled and emitted come with its record and are written
after the batch of records, to the chains they belong to (``store/chains.py``).

Each record also feeds the node's ``Metrics`` at once, when it is given one, so the
Prometheus counters move with every invocation, before the record is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Sequence

from triggerfish.errors import AdapterError, ConflictError
from triggerfish.observe.metrics import Metrics
from triggerfish.runtime.base import FunctionSpec, InvocationResult
from triggerfish.store.records import ChainEvent, InvocationRecord
from triggerfish.store.sql import SqlStore

log = logging.getLogger("triggerfish.observe")

LIMIT = 100_000  # records kept while the store cannot be written
RETRY = 1.0  # seconds between tries of a store that failed
DROP_REPORT = 10.0  # seconds between two warnings of records dropped


class Recorder:
    def __init__(
        self,
        store: SqlStore,
        *,
        interval: float = 0.2,
        batch: int = 1000,
        limit: int = LIMIT,
        retry: float = RETRY,
        metrics: Metrics | None = None,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._interval = interval
        self._batch = batch
        self._limit = max(limit, batch)
        self._retry = retry
        self._buffer: list[InvocationRecord] = []
        self.dropped = 0  # records dropped past ``limit`` since the start
        self._unreported = 0  # of those, not yet in a warning
        self._reported_at = 0.0
        self._failing_since: float | None = None  # monotonic time of the first failure
        self._dropped_before = 0  # ``dropped`` when writing started failing
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # Writes under way: ``flush`` waits for them, as for its own.
        self._writes: set[asyncio.Future[None]] = set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="recorder")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await self.flush()
        except Exception as exc:
            # Stopping while the store is away: nowhere left to keep them.
            log.error("%d invocation record(s) not written: %s", len(self._buffer), exc)
            self._buffer.clear()

    def record(
        self,
        spec: FunctionSpec,
        result: InvocationResult,
        *,
        trigger: str | None,
        event_ids: Sequence[str],
        attempt: int,
        request_bytes: int,
        correlation: str | None = None,
        events: Sequence[ChainEvent] = (),
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
            correlation=correlation,
            events=tuple(events),
        )
        self._buffer.append(record)
        if self._metrics is not None:
            self._metrics.observe(record)
        if len(self._buffer) >= self._batch:
            if len(self._buffer) > self._limit:
                self._drop()
            self._wake.set()
        return record

    @property
    def pending(self) -> int:
        """Records waiting to be written."""
        return len(self._buffer)

    async def flush(self) -> None:
        """Write every buffered record, also those that come while it writes, and wait
        for the writes already under way: once it returns, every record recorded
        before it was called is in the store (or it raises)."""
        while self._buffer or self._writes:
            if self._writes:
                await asyncio.shield(next(iter(self._writes)))
            else:
                await self._write_some(len(self._buffer))

    async def _write_some(self, count: int) -> None:
        """Write the first ``count`` buffered records, ``batch`` at a time."""
        while count > 0 and self._buffer:
            batch = self._buffer[: min(count, self._batch)]
            del self._buffer[: len(batch)]
            count -= len(batch)
            # Shielded: a stop that cancels the flusher lets a write under way finish,
            # so the final flush never writes the same records twice; it waits for it.
            writing = asyncio.ensure_future(self._write(batch))
            self._writes.add(writing)
            writing.add_done_callback(functools.partial(self._written, batch))
            await asyncio.shield(writing)

    def _written(self, batch: list[InvocationRecord], writing: asyncio.Future[None]) -> None:
        """A write ended: a failed one puts its records back, first, for the next try
        (before its waiters resume)."""
        self._writes.discard(writing)
        if writing.cancelled() or writing.exception() is not None:
            self._buffer[:0] = batch
            if len(self._buffer) > self._limit:
                self._drop()

    async def _write(self, batch: list[InvocationRecord]) -> None:
        try:
            await self._store.record_invocations(batch)
        except ConflictError:
            # Some were stored already: a write whose commit went through while its
            # connection broke, retried. Store the others one by one.
            for record in batch:
                with contextlib.suppress(ConflictError):
                    await self._store.record_invocations([record])
        # After the records: a batch whose events fail to be written comes back whole,
        # its records then conflict and are skipped, and its events are written again.
        events = [event for record in batch for event in record.events]
        if events:
            await self._store.chains.record(events)

    def _drop(self) -> None:
        """Drop the oldest records past ``limit``; say so at most every few seconds."""
        excess = len(self._buffer) - self._limit
        del self._buffer[:excess]
        self.dropped += excess
        self._unreported += excess
        now = time.monotonic()
        if now - self._reported_at >= DROP_REPORT:
            log.warning(
                "dropped %d invocation record(s), the oldest: the store cannot be written and "
                "%d wait for it already (the limit)",
                self._unreported,
                self._limit,
            )
            self._reported_at = now
            self._unreported = 0

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
            except Exception as exc:
                if self._failing_since is None:
                    self._failing_since = time.monotonic()
                    self._dropped_before = self.dropped
                    log.warning(
                        "cannot write invocation records (%s); %d kept, trying again every %g s",
                        exc,
                        len(self._buffer),
                        self._retry,
                        exc_info=not isinstance(exc, AdapterError),
                    )
                await asyncio.sleep(self._retry)
                continue
            if self._failing_since is not None:
                dropped = self.dropped - self._dropped_before
                log.info(
                    "invocation records written again after %.1f s%s",
                    time.monotonic() - self._failing_since,
                    f"; {dropped} were dropped meanwhile" if dropped else "",
                )
                self._failing_since = None
