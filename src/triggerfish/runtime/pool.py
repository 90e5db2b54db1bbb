"""The warm environments of one function version, and its concurrency slots.

A ``Pool`` counts the invocations running (each holds a slot, at most the spec's
``max_concurrency``), queues callers waiting for a slot in arrival order, and keeps
idle environments for reuse, most recently used first, so that the least recently
used ones age out under ``idle_ttl``. It starts no process itself: the executor takes
an idle worker or starts a new one once it holds a slot.
"""

from __future__ import annotations

import asyncio
from collections import deque

from triggerfish.runtime.base import FunctionSpec
from triggerfish.runtime.worker import Worker


class Pool:
    def __init__(self, spec: FunctionSpec) -> None:
        self.spec = spec
        self.running = 0
        self.idle: list[Worker] = []
        self.busy: set[Worker] = set()
        self._waiters: deque[asyncio.Future[bool]] = deque()

    @property
    def limit(self) -> int:
        return max(0, self.spec.max_concurrency)

    def free_slots(self) -> int:
        return max(0, self.limit - self.running)

    @property
    def empty(self) -> bool:
        return not (self.running or self.idle or self.busy or self._waiters)

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

    def expired(self, now: float, ttl: float) -> list[Worker]:
        """Remove and return the idle workers unused for ``ttl`` seconds."""
        keep = [worker for worker in self.idle if now - worker.last_used < ttl]
        gone = [worker for worker in self.idle if now - worker.last_used >= ttl]
        self.idle = keep
        return gone

    def drain(self) -> list[Worker]:
        """Remove and return every worker, idle and busy."""
        workers = [*self.idle, *self.busy]
        self.idle = []
        self.busy.clear()
        return workers


def _resolve(waiter: asyncio.Future[bool], value: bool) -> None:
    if not waiter.done():
        waiter.set_result(value)
