"""The warm environments of one function version, and its concurrency slots.

A ``Pool`` counts the invocations running (each holds a slot, at most the spec's
``max_concurrency``), queues callers waiting for a slot in arrival order, and keeps
idle environments for reuse, most recently used first, so that the least recently
used ones age out under ``idle_ttl``. It starts no process itself: the executor takes
an idle worker or starts a new one once it holds a slot. It also keeps the version's
snapshot template, if any, and the counters that ``PoolStats`` reports.

A waiter that gave its invocation (``acquire(..., message)``) may instead be handed
to an environment directly (``hand_over``): its invocation is sent at once, and it
holds the slot of the call ahead of it from the moment the environment starts it. One
queued behind a running call must start within ``QUEUED_START_WITHIN`` and before
its deadline, or it is taken back (see ``worker``) and its caller waits here again,
at the head of the queue.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import TYPE_CHECKING

from triggerfish.runtime.base import FunctionSpec, PoolStats
from triggerfish.runtime.protocol import Invoke
from triggerfish.runtime.worker import Call, Worker

if TYPE_CHECKING:
    from triggerfish.runtime.snapshot import Template


#: A waiter whose deadline is this close (seconds) has waited long enough: the loop's
#: clock and its timers count whole milliseconds.
DEADLINE_SLACK = 0.001
#: Seconds an invocation queued behind a running call may wait there for its start:
#: behind a call slower than that, it goes back to wait for any environment.
QUEUED_START_WITHIN = 0.05


class _Waiter:
    __slots__ = ("behind", "counted", "deadline", "future", "message")

    def __init__(
        self,
        future: asyncio.Future[bool | Call],
        message: Invoke | None,
        behind: bool,
        deadline: float | None,
    ) -> None:
        self.future = future
        self.message = message
        self.behind = behind  # it may also wait behind a running call
        self.counted = message is not None  # in ``Pool.queueable``
        self.deadline = deadline  # loop time at which it gives up; None: never


class Pool:
    def __init__(self, spec: FunctionSpec) -> None:
        self.spec = spec
        self.running = 0
        self.idle: list[Worker] = []
        self.busy: set[Worker] = set()
        self.launching: set[Worker] = set()  # started, init not finished
        self._waiters: deque[_Waiter] = deque()
        # One timer for every waiter's deadline, at the earliest of them.
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self.queueable = 0  # waiters that may be handed to an environment
        self.queueable_behind = 0  # those of them that may wait behind a running call
        self.starting = 0  # environments being started
        # Of those, started ahead of demand (min_warm, a deploy's): an invocation that
        # finds none idle waits for one of them rather than starting its own.
        self.warming = 0
        self.waiting_warm = 0  # invocations waiting for one of those
        self.waiting_memory = 0  # invocations with a slot, waiting for memory
        self.template: Template | None = None
        self.template_lock = asyncio.Lock()
        self.invocations = 0
        self.cold_starts = 0
        self.prewarmed = 0
        self.recycled = 0
        self.reaped = 0
        self.handed_over = 0

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
            waiting=len(self._waiters)
            + self.waiting_memory
            + sum(worker.queued for worker in self.busy),
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
            handed_over=self.handed_over,
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

    async def acquire(
        self,
        wait: float | None,
        message: Invoke | None = None,
        *,
        behind: bool = False,
        first: bool = False,
    ) -> bool | Call:
        """Wait for a slot, up to ``wait`` seconds (forever when None). False on timeout.
        With ``message``, the wait may end with a ``Call``: the invocation was handed to
        an environment that just finished one (see ``hand_over``); with ``behind`` too,
        it may be handed to one while it still runs another, to start right after it.
        ``first``: wait at the head of the queue (a caller that waited already)."""
        if self.try_acquire():
            return True
        if wait is not None and wait <= 0:
            return False
        loop = asyncio.get_running_loop()
        deadline = None if wait is None else loop.time() + wait
        waiter = _Waiter(loop.create_future(), message, behind, deadline)
        if first:
            self._waiters.appendleft(waiter)
        else:
            self._waiters.append(waiter)
        self.queueable += waiter.counted
        self.queueable_behind += waiter.counted and behind
        if deadline is not None:
            self._watch(loop, deadline)
        try:
            return await waiter.future
        except asyncio.CancelledError:
            # A slot handed over just as the caller gave up must not be lost. (A
            # ``Call`` handed over is settled by the executor, which knows its worker.)
            future = waiter.future
            if future.done() and not future.cancelled() and future.result() is True:
                self.release()
            raise
        finally:
            self._forget(waiter)

    def _watch(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        # The timer is left to fire after the waiters it was set for got their slots (it
        # then finds nothing to do) rather than cancelled and made again for every wait.
        if self._timer is not None:
            if self._timer_at <= when:
                return
            self._timer.cancel()
        self._timer_at = when
        self._timer = loop.call_at(when, self._expire, loop)

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        """Refuse the waiters whose deadline has come; watch for the next deadline."""
        self._timer = None
        now = loop.time() + DEADLINE_SLACK
        upcoming: float | None = None
        for waiter in self._waiters:
            deadline = waiter.deadline
            if deadline is None or waiter.future.done():
                continue
            if deadline <= now:
                self._resolve(waiter, False)
            elif upcoming is None or deadline < upcoming:
                upcoming = deadline
        if upcoming is not None:
            self._watch(loop, upcoming)

    def release(self) -> None:
        """Give the slot to the first waiter still waiting, or free it."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if waiter.future.done():
                continue
            if self.running <= self.limit:
                self._resolve(waiter, True)
                return
            # The limit went down since: this slot disappears, the waiter waits on.
            self._waiters.appendleft(waiter)
            break
        self.running -= 1

    def hand_over(self, worker: Worker) -> bool:
        """Give the first waiting invocation that may be handed over to ``worker``
        (the caller then ``worker.send()``s it); False when none waits. An environment
        that runs nothing may take any waiter with a message; one that runs a call, only
        those that may wait ``behind`` it, each with a start-by time: within
        ``QUEUED_START_WITHIN``, and no later than its caller's deadline, so that a
        caller queued there still starts in time or is given back its place here."""
        running = worker.in_flight > 0
        if running and not self.queueable_behind:
            return False  # without a look at the waiters, one by one
        waiters = self._waiters
        while waiters and waiters[0].future.done():
            waiters.popleft()
        now = clock = 0.0
        if running:
            now = asyncio.get_running_loop().time()
            clock = time.monotonic()
        for waiter in waiters:
            if waiter.message is None or waiter.future.done():
                continue
            start_by = None
            if running:
                if not waiter.behind:
                    continue
                within = QUEUED_START_WITHIN
                if waiter.deadline is not None:
                    within = min(within, waiter.deadline - now)
                    if within <= DEADLINE_SLACK:
                        continue  # its time is up: the deadline timer refuses it
                start_by = clock + within
            call = worker.submit(waiter.message, send=False, start_by=start_by)
            self._resolve(waiter, call)
            self.handed_over += 1
            return True
        return False

    def _resolve(self, waiter: _Waiter, value: bool | Call) -> None:
        if not waiter.future.done():
            waiter.future.set_result(value)
        self._forget(waiter)

    def _forget(self, waiter: _Waiter) -> None:
        if waiter.counted:
            waiter.counted = False
            self.queueable -= 1
            self.queueable_behind -= waiter.behind

    def refuse_waiters(self) -> None:
        """Every caller waiting for a slot gets ``False`` (the executor is stopping)."""
        while self._waiters:
            self._resolve(self._waiters.popleft(), False)

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
