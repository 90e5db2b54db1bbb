"""The warm environments of one function version, and its concurrency slots.

A ``Pool`` counts the invocations running (each holds a slot, at most the spec's
``max_concurrency``), queues callers waiting for a slot in arrival order, and keeps
idle environments for reuse, most recently used first, so that the least recently
used ones age out under ``idle_ttl``. It starts no process itself: the executor takes
an idle worker or starts a new one once it holds a slot. It also keeps the version's
snapshot template, if any, and the counters that ``PoolStats`` reports.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING

from triggerfish.runtime.base import FunctionSpec, PoolStats
from triggerfish.runtime.worker import Worker

if TYPE_CHECKING:
    from triggerfish.runtime.snapshot import Template


class Pool:
    def __init__(self, spec: FunctionSpec) -> None:
        self.spec = spec
        self.running = 0
        self.idle: list[Worker] = []
        self.busy: set[Worker] = set()
        self.launching: set[Worker] = set()  # started, init not finished
        self._waiters: deque[asyncio.Future[bool]] = deque()
        self.starting = 0  # environments being started
        self.waiting_memory = 0  # invocations with a slot, waiting for memory
        self.template: Template | None = None
        self.template_lock = asyncio.Lock()
        self.invocations = 0
        self.cold_starts = 0
        self.prewarmed = 0
        self.recycled = 0
        self.reaped = 0

    @property
    def environments(self) -> int:
        return len(self.idle) + len(self.busy) + self.starting

    def stats(self) -> PoolStats:
        spec = self.spec
        reserved = sum(worker.reserved_mb for worker in (*self.idle, *self.busy))
        return PoolStats(
            function=spec.function,
            version=spec.version,
            busy=len(self.busy),
            idle=len(self.idle),
            starting=self.starting,
            waiting=len(self._waiters) + self.waiting_memory,
            max_concurrency=spec.max_concurrency,
            min_warm=spec.min_warm,
            memory_mb=spec.memory,
            reserved_mb=reserved + self.starting * spec.memory,
            invocations=self.invocations,
            cold_starts=self.cold_starts,
            prewarmed=self.prewarmed,
            recycled=self.recycled,
            reaped=self.reaped,
            snapshot=self.template is not None and self.template.alive,
        )

    @property
    def limit(self) -> int:
        return max(0, self.spec.max_concurrency)

    def free_slots(self) -> int:
        return max(0, self.limit - self.running)

    def try_acquire(self) -> bool:
        if self.running < self.limit and not self._waiters:
            self.running += 1
            return True
        return False

    async def acquire(self, wait: float | None) -> bool:
        """Wait for a slot, up to ``wait`` seconds (forever when None). False on timeout."""
        if self.try_acquire():
            return True
        if wait is not None and wait <= 0:
            return False
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        self._waiters.append(waiter)
        timer = None
        if wait is not None:
            timer = loop.call_later(wait, _resolve, waiter, False)
        try:
            return await waiter
        except asyncio.CancelledError:
            # A slot handed over just as the caller gave up must not be lost.
            if waiter.done() and not waiter.cancelled() and waiter.result():
                self.release()
            raise
        finally:
            if timer is not None:
                timer.cancel()

    def release(self) -> None:
        """Give the slot to the first waiter still waiting, or free it."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done() and self.running <= self.limit:
                waiter.set_result(True)
                return
            if not waiter.done():
                # The limit went down since: this slot disappears, the waiter waits on.
                self._waiters.appendleft(waiter)
                break
        self.running -= 1

    def refuse_waiters(self) -> None:
        """Every caller waiting for a slot gets ``False`` (the executor is stopping)."""
        while self._waiters:
            _resolve(self._waiters.popleft(), False)

    def take_idle(self) -> Worker | None:
        """The most recently used idle worker (it may have died since; check ``alive``)."""
        return self.idle.pop() if self.idle else None

    def expired(self, now: float, ttl: float, keep_at_least: int = 0) -> list[Worker]:
        """Remove and return the idle workers unused for ``ttl`` seconds, the least
        recently used first, keeping ``keep_at_least`` environments in all."""
        spare = self.environments - keep_at_least
        gone: list[Worker] = []
        for worker in self.idle:  # least recently used first
            if len(gone) >= spare or now - worker.last_used < ttl:
                break
            gone.append(worker)
        if gone:
            del self.idle[: len(gone)]
        return gone

    def drain(self) -> list[Worker]:
        """Remove and return every worker, idle and busy."""
        workers = [*self.idle, *self.busy, *self.launching]
        self.idle = []
        self.busy.clear()
        self.launching.clear()
        return workers


def _resolve(waiter: asyncio.Future[bool], value: bool) -> None:
    if not waiter.done():
        waiter.set_result(value)
