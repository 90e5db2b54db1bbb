"""``ProcessExecutor``: runs invocations in autoscaled pools of warm OS processes.

Per function version (``spec.key``) it keeps a ``Pool`` and scales it with demand:

- up, at once: an invocation that holds one of the version's ``max_concurrency``
  slots and finds no idle environment starts one (a cold start, reported with its
  init duration), provided the node's memory budget holds one more environment of
  that memory size. Otherwise idle environments of other versions are evicted, least
  recently used first, to make room; if that cannot make room the invocation waits
  for memory or for an environment of its version to come free. A caller that gave
  ``wait`` gets ``throttled`` when that time runs out (asynchronous events, called
  with no ``wait``, simply wait);
- ``min_warm`` environments are kept started ahead of demand (provisioned
  concurrency, see ``provision``); their first invocation is not a cold start;
- down: an environment idle for the version's ``idle_ttl`` (the executor's default
  when unset) is stopped, so an idle function costs no process;
- recycling: an environment is replaced after ``max_invocations`` invocations, or
  when its memory peak reaches ``RECYCLE_FRACTION`` of its memory size (a leak is
  cut before it becomes an out-of-memory failure).

Python environments are forked from a zygote per interpreter (``zygote.py``), or from a
per-version snapshot template for ``snapstart`` functions (``snapshot.py``), and fall
back to a fresh interpreter when no zygote can be had. Node.js environments start
from a pre-started ``node`` process when one is ready (``node/launcher.py``);
``provided`` environments are a relay in front of the function's ``bootstrap``
(``provided/relay.py``). An environment whose
invocation timed out, ran out of memory or crashed, or whose handler could not be
loaded, is discarded.

An invocation waiting for a slot is handed to an environment that has nothing more to
run from the callback that reads its answer. On Python runtimes invocations are also
queued behind a running call while its calls are short (``PIPELINE_DEPTH``,
``PIPELINE_WITHIN``), each to start by a time (see ``Pool.hand_over``): within
``QUEUED_START_WITHIN`` and its caller's wait. One that did not start by then, or
whose environment died before starting it, never ran: it waits for a slot again, at
the head of the queue, with what is left of its wait, so a synchronous caller still
starts or gets ``throttled`` in time.

The executor never raises for a failed invocation: the result's status says what
happened (``ok``, ``error``, ``timeout``, ``oom``, ``crashed``, ``throttled``). After
``stop()`` begins, invocations are answered ``throttled`` so that callers retry them
elsewhere or later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from triggerfish.runtime.base import (
    FunctionSpec,
    InvocationRequest,
    InvocationResult,
    PoolStats,
    runtime_family,
)
from triggerfish.runtime.budget import MemoryBudget
from triggerfish.runtime.environment import Exit, WorkerOptions
from triggerfish.runtime.node.launcher import NodeLauncher
from triggerfish.runtime.pool import Pool
from triggerfish.runtime.protocol import Done, InitFailed, Invoke, Ready, Skipped
from triggerfish.runtime.results import (
    STOPPED_MESSAGE,
    done_result,
    emit_request,
    exit_result,
    failure,
    init_failure,
    throttled,
)
from triggerfish.runtime.snapshot import Template, create_template
from triggerfish.runtime.worker import NOT_STARTED, Call, NotStarted, Worker
from triggerfish.runtime.zygote import ForkServerGone, Zygotes

DEFAULT_LOG_LIMIT = 256 * 1024
RECYCLE_FRACTION = 0.9
#: Invocations an environment holds at most: the running one and eight queued behind
#: it, topped up once it has run them, so that one write (and one wake-up of the
#: environment's process) carries several.
PIPELINE_DEPTH = 9
#: Invocations are queued behind a running one only while those the environment holds
#: should take at most this long (seconds), at the time its last call took, so that
#: waiting behind a slow call stays rare and short.
PIPELINE_WITHIN = 0.005
STOPPING_MESSAGE = "Triggerfish is stopping; try again later"

log = logging.getLogger("triggerfish.runtime")

Started = Worker | InitFailed | Exit | OSError


class ProcessExecutor:
    """Runs each function version's invocations in its own warm processes."""

    def __init__(
        self,
        *,
        python_executable: str | None = None,
        work_dir: Path | str | None = None,
        log_limit: int = DEFAULT_LOG_LIMIT,
        idle_ttl: float = 300.0,
        init_timeout: float = 10.0,
        memory_capacity: int = 0,
        zygote: bool = True,
        snapshot_ttl: float = 3600.0,
        node_spares: bool = True,
    ) -> None:
        """``memory_capacity``: MB that environments may hold in all (0: the machine's
        memory). ``zygote``: fork environments from a zygote (else a fresh interpreter
        each). ``snapshot_ttl``: seconds a snapshot template is kept without forks.
        ``node_spares``: keep a pre-started Node.js process per runtime and memory size."""
        self._options = WorkerOptions(
            python=python_executable or sys.executable,
            log_limit=log_limit,
            work_dir=Path(work_dir) if work_dir is not None else None,
            init_timeout=init_timeout,
        )
        self._idle_ttl = idle_ttl
        self._snapshot_ttl = snapshot_ttl
        self._budget = MemoryBudget(memory_capacity)
        self._zygotes = Zygotes(timeout=max(init_timeout, 10.0)) if zygote else None
        self._node = NodeLauncher(spares=node_spares, spare_ttl=idle_ttl)
        self._pools: dict[str, Pool] = {}
        self._capacity_waiters: list[asyncio.Future[None]] = []
        self._inflight = 0
        self._drained: asyncio.Future[None] | None = None
        self._stopping = False
        self._killing = False
        self._reaper: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._new_pool = asyncio.Event()

    @property
    def memory_capacity_mb(self) -> int:
        return self._budget.capacity

    @property
    def memory_reserved_mb(self) -> int:
        return self._budget.reserved

    def zygote_pids(self) -> dict[str, int]:
        """The running zygotes, by interpreter."""
        return {} if self._zygotes is None else self._zygotes.pids()

    def node_spare_pids(self) -> list[int]:
        """The pre-started Node.js processes waiting for an environment."""
        return self._node.spare_pids()

    def snapshot_pid(self, spec: FunctionSpec) -> int | None:
        pool = self._pools.get(spec.key)
        template = None if pool is None else pool.template
        return template.pid if template is not None and template.alive else None

    def pool_stats(self) -> list[PoolStats]:
        """One ``PoolStats`` per function version this executor has run or provisioned."""
        return [pool.stats() for pool in self._pools.values()]

    async def start(self) -> None:
        self._stopping = self._killing = False
        if self._reaper is None:
            self._reaper = asyncio.create_task(self._reap_forever())
        if self._zygotes is not None:
            # The first cold start should cost a fork, not a zygote's start.
            await self._zygotes.get(self._options.python)

    async def stop(self, *, grace: float = 10.0) -> None:
        """Let invocations in flight finish within ``grace`` seconds, then kill workers."""
        self._stopping = True
        for pool in self._pools.values():
            pool.refuse_waiters()
        self._wake()
        await self._wait_drained(grace)
        self._killing = True
        for pool in self._pools.values():
            for worker in pool.drain():
                worker.stop_now()
                self._discard(worker)
        # Killed environments answer at once; the bound only guards against surprises.
        await self._wait_drained(grace + 5.0)
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
            self._reaper = None
        while self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        templates = [pool.template for pool in self._pools.values() if pool.template]
        self._pools.clear()
        await asyncio.gather(*(template.close() for template in templates))
        if self._zygotes is not None:
            await self._zygotes.close()
        self._node.close()

    def free_slots(self, spec: FunctionSpec) -> int:
        """How many more invocations of ``spec`` may start now: its free concurrency
        slots, bounded by its idle environments plus what the memory budget holds."""
        if self._stopping:
            return 0
        pool = self._pools.get(spec.key)
        running = 0 if pool is None else pool.running
        idle = 0 if pool is None else len(pool.idle)
        slots = max(0, spec.max_concurrency - running)
        room = max(0, self._budget.free) // max(1, spec.memory)
        return min(slots, idle + room)

    async def provision(self, spec: FunctionSpec) -> None:
        """Start ``spec.min_warm`` environments ahead of demand (in the background) and
        keep that many; call it when a version goes live."""
        if self._stopping:
            return
        if runtime_family(spec.runtime) == "nodejs":
            self._node.prepare(spec)
        self._top_up(self._pool(spec))

    async def invoke(
        self, spec: FunctionSpec, request: InvocationRequest, *, wait: float | None = None
    ) -> InvocationResult:
        if self._stopping:
            return throttled(spec, request, STOPPING_MESSAGE)
        pool = self._pool(spec)
        loop = asyncio.get_running_loop()
        deadline = None if wait is None else loop.time() + wait
        message = Invoke(
            request.request_id,
            request.payload,
            request.invoked_arn or spec.arn,
            request.trace_id,
            dict(request.client_context) if request.client_context else None,
        )
        # A waiting invocation is handed to an environment as it finishes one, in the
        # same callback. On Python runtimes it may also be queued behind a running call,
        # to start there by a time (see ``Pool.hand_over``).
        queueable = runtime_family(spec.runtime) == "python"
        counted = False
        while True:
            # Asked again after a queued start fell through: only what is left of
            # ``wait``, ahead of the callers that came later.
            left = None if deadline is None else max(0.0, deadline - loop.time())
            turn = pool.try_acquire() or await pool.acquire(
                left, message, behind=queueable, first=counted
            )
            if turn is False and self._stopping:
                return throttled(spec, request, STOPPING_MESSAGE)
            if turn is False:
                return throttled(
                    spec,
                    request,
                    f"Rate exceeded: function '{spec.function}' is at its concurrency limit"
                    f" of {spec.max_concurrency}",
                )
            if turn is True and self._stopping:
                pool.release()
                return throttled(spec, request, STOPPING_MESSAGE)
            if not counted:
                pool.invocations += 1
                counted = True
            self._inflight += 1
            try:
                if isinstance(turn, Call):
                    result = await self._complete(pool, spec, request, turn)
                else:
                    result = await self._run(pool, spec, request, message, deadline)
            finally:
                self._inflight -= 1
                if self._inflight == 0 and self._drained is not None and not self._drained.done():
                    self._drained.set_result(None)
            if result is not None:
                return result
            # It waited in an environment that did not start it in time, or died first:
            # it never ran.
            if self._stopping:
                return throttled(spec, request, STOPPING_MESSAGE)

    async def retire(self, function: str) -> None:
        """Stop the warm environments and snapshots of every version of ``function``;
        invocations in flight finish, and their environments are then discarded."""
        closing: list[Template] = []
        for key, pool in list(self._pools.items()):
            if pool.spec.function == function:
                del self._pools[key]
                idle, pool.idle = pool.idle, []
                for worker in idle:
                    self._discard(worker)
                if pool.template is not None:
                    closing.append(pool.template)
                    pool.template = None
        await asyncio.gather(*(template.close() for template in closing))

    def reap_idle(self) -> int:
        """Stop environments idle for their ``idle_ttl`` (keeping ``min_warm``), and
        snapshot templates unused for ``snapshot_ttl``; returns how many environments."""
        now = asyncio.get_running_loop().time()
        reaped = 0
        for pool in self._pools.values():
            spec = pool.spec
            for worker in pool.expired(now, self._ttl(spec), spec.min_warm):
                self._discard(worker)
                pool.reaped += 1
                reaped += 1
            self._top_up(pool)
            template = pool.template
            if template is not None and (
                not template.alive
                or (
                    pool.environments == 0
                    and time.monotonic() - template.last_used >= self._snapshot_ttl
                )
            ):
                pool.template = None
                self._background_task(template.close())
        self._node.reap()
        return reaped

    def _ttl(self, spec: FunctionSpec) -> float:
        return self._idle_ttl if spec.idle_ttl is None else spec.idle_ttl

    async def _reap_forever(self) -> None:
        while True:
            shortest = min(
                [self._idle_ttl, *(self._ttl(pool.spec) for pool in self._pools.values())]
            )
            # A new version (maybe with a shorter idle_ttl) wakes the reaper early.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(max(shortest / 4, 0.05), 30.0)):
                    await self._new_pool.wait()
            self._new_pool.clear()
            self.reap_idle()

    def _pool(self, spec: FunctionSpec) -> Pool:
        pool = self._pools.get(spec.key)
        if pool is None:
            pool = self._pools[spec.key] = Pool(spec)
            self._new_pool.set()
        else:
            pool.spec = spec
        return pool

    async def _wait_drained(self, grace: float | None) -> None:
        if self._inflight == 0:
            return
        self._drained = asyncio.get_running_loop().create_future()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._drained), grace)

    def _background_task(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _wake(self) -> None:
        """Memory came free or an environment went idle: waiters look again."""
        waiters, self._capacity_waiters = self._capacity_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _discard(self, worker: Worker) -> None:
        worker.kill()
        if worker.reserved_mb:
            self._budget.release(worker.reserved_mb)
            worker.reserved_mb = 0
            if self._capacity_waiters:
                self._wake()
        self._background_task(worker.close())

    def _take_idle(self, pool: Pool) -> Worker | None:
        worker = pool.take_idle()
        while worker is not None and not worker.alive:
            self._discard(worker)
            worker = pool.take_idle()
        return worker

    def _reserve(self, spec: FunctionSpec) -> bool:
        """Hold memory for one more environment of ``spec``, evicting idle environments
        of any version (least recently used first, never below ``min_warm``) when that
        makes enough room."""
        budget = self._budget
        if budget.try_reserve(spec.memory):
            return True
        spare: list[tuple[float, Pool, Worker]] = []
        for pool in self._pools.values():
            count = max(0, pool.environments - pool.spec.min_warm)
            spare.extend((worker.last_used, pool, worker) for worker in pool.idle[:count])
        if budget.free + sum(worker.reserved_mb for _, _, worker in spare) < spec.memory:
            return False
        spare.sort(key=lambda entry: entry[0])
        for _, pool, worker in spare:
            if budget.free >= spec.memory:
                break
            pool.idle.remove(worker)
            self._discard(worker)
        return budget.try_reserve(spec.memory)

    async def _obtain(
        self,
        pool: Pool,
        spec: FunctionSpec,
        request: InvocationRequest,
        message: Invoke,
        deadline: float | None,
    ) -> Worker | InvocationResult:
        """An environment for this invocation: idle, newly started, or awaited."""
        loop = asyncio.get_running_loop()
        while True:
            worker = self._take_idle(pool)
            if worker is not None:
                return worker
            if spec.memory > self._budget.capacity:
                return failure(
                    spec,
                    request,
                    "error",
                    "Runtime.InsufficientMemory",
                    f"Memory Size {spec.memory} MB is over this node's memory capacity"
                    f" of {self._budget.capacity} MB",
                )
            if self._reserve(spec):
                pool.starting += 1
                try:
                    started = await self._start_worker(pool, spec, "on-demand", message)
                finally:
                    pool.starting -= 1
                if isinstance(started, Worker):
                    pool.cold_starts += 1
                    return started
                if isinstance(started, OSError):
                    return failure(
                        spec, request, "error", "Runtime.StartError", f"Cannot start: {started}"
                    )
                return init_failure(spec, request, started, self._options.init_timeout)
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return throttled(
                    spec,
                    request,
                    f"Rate exceeded: no memory for another environment of '{spec.function}'"
                    f" ({spec.memory} MB; node capacity {self._budget.capacity} MB in use)",
                )
            waiter: asyncio.Future[None] = loop.create_future()
            self._capacity_waiters.append(waiter)
            pool.waiting_memory += 1
            try:
                async with asyncio.timeout(remaining):
                    await waiter
            except TimeoutError:
                pass
            finally:
                pool.waiting_memory -= 1
                with contextlib.suppress(ValueError):
                    self._capacity_waiters.remove(waiter)
            if self._stopping:
                return throttled(spec, request, STOPPING_MESSAGE)

    async def _start_worker(
        self, pool: Pool, spec: FunctionSpec, init_type: str, first: Invoke | None = None
    ) -> Started:
        """Start and initialise one environment (with ``first`` queued behind its init);
        its memory is already reserved, and is released here when the start fails."""
        try:
            launched = await self._launch(pool, spec, init_type, first)
        except BaseException:
            self._release(spec.memory)
            raise
        if not isinstance(launched, tuple):
            self._release(spec.memory)
            return launched
        worker, inherited = launched
        worker.reserved_mb = spec.memory
        if self._killing:  # stop()'s grace ran out while the process was starting
            self._discard(worker)
            return Exit("stopped", None, "", time.time(), 0.0, 0)
        pool.launching.add(worker)
        try:
            ready = await worker.initialise()
        except BaseException:
            pool.launching.discard(worker)
            self._discard(worker)
            raise
        pool.launching.discard(worker)
        if not isinstance(ready, Ready):
            self._discard(worker)
            return ready
        if inherited is not None:  # the first environment of a new snapshot paid its init
            worker.pending_init = Ready(
                inherited.init_duration_ms + ready.init_duration_ms, inherited.logs + ready.logs
            )
        return worker

    def _release(self, mb: int) -> None:
        self._budget.release(mb)
        if self._capacity_waiters:
            self._wake()

    async def _launch(
        self, pool: Pool, spec: FunctionSpec, init_type: str, first: Invoke | None
    ) -> tuple[Worker, Ready | None] | InitFailed | Exit | OSError:
        options = self._options
        try:
            python = runtime_family(spec.runtime) == "python"
            if spec.snapstart and python and self._zygotes is not None:
                for _ in range(2):  # a template that died is replaced once
                    template, inherited = await self._template(pool, spec)
                    if template is None:
                        break
                    if not isinstance(template, Template):
                        return template
                    try:
                        worker = await Worker.start(
                            spec,
                            options,
                            init_type="snap-start",
                            template=template.server,
                            first=first,
                        )
                    except ForkServerGone:
                        continue
                    return worker, inherited
            worker = await Worker.start(
                spec,
                options,
                init_type=init_type,
                zygotes=self._zygotes,
                first=first,
                node=self._node,
            )
        except OSError as exc:
            return exc
        return worker, None

    async def _template(
        self, pool: Pool, spec: FunctionSpec
    ) -> tuple[Template | InitFailed | Exit | None, Ready | None]:
        template = pool.template
        if template is not None and template.alive:
            return template, None
        async with pool.template_lock:
            template = pool.template
            if template is not None and template.alive:
                return template, None
            if template is not None:
                pool.template = None
                self._background_task(template.close())
            assert self._zygotes is not None
            created = await create_template(spec, self._options, self._zygotes)
            if not isinstance(created, Template):
                return created, None
            if self._pools.get(spec.key) is not pool or self._stopping:
                self._background_task(created.close())
                return Exit("stopped", None, "", time.time(), 0.0, 0), None
            pool.template = created
            inherited = Ready(created.init_duration_ms, created.pending_logs)
            created.pending_logs = ""
            return created, inherited

    def _top_up(self, pool: Pool) -> None:
        """Start environments in the background until ``min_warm`` exist (as far as the
        memory budget allows without evicting anything)."""
        spec = pool.spec
        if self._stopping or self._pools.get(spec.key) is not pool:
            return
        for _ in range(spec.min_warm - pool.environments):
            if not self._budget.try_reserve(spec.memory):
                return
            pool.starting += 1
            self._background_task(self._prewarm(pool, spec))

    async def _prewarm(self, pool: Pool, spec: FunctionSpec) -> None:
        try:
            started = await self._start_worker(pool, spec, "provisioned-concurrency")
        finally:
            pool.starting -= 1
        if not isinstance(started, Worker):
            log.warning(
                "%s: a provisioned environment did not start: %s", spec.key, _describe(started)
            )
            return
        started.pending_init = None  # its init ran ahead of any invocation
        if self._stopping or self._pools.get(spec.key) is not pool:
            self._discard(started)
            return
        pool.prewarmed += 1
        pool.idle.append(started)
        self._wake()

    async def _run(
        self,
        pool: Pool,
        spec: FunctionSpec,
        request: InvocationRequest,
        message: Invoke,
        deadline: float | None,
    ) -> InvocationResult | None:
        """Run on an idle or a new environment; the caller holds a slot."""
        worker = self._take_idle(pool)
        if worker is None:
            try:
                obtained = await self._obtain(pool, spec, request, message, deadline)
            except BaseException:
                pool.release()
                raise
            if isinstance(obtained, InvocationResult):
                pool.release()
                return obtained
            worker = obtained
        pool.busy.add(worker)
        worker.on_answer = lambda worker, done: self._answered(pool, worker, done)
        call = worker.submit(message, send=False)
        self._refill(pool, worker)
        worker.send()
        return await self._complete(pool, spec, request, call)

    async def _complete(
        self, pool: Pool, spec: FunctionSpec, request: InvocationRequest, call: Call
    ) -> InvocationResult | None:
        """Wait for ``call``'s answer, then give its slot back (or leave it with the
        call that began after it) and the environment back to the pool. None: the
        environment did not start ``call`` (it died first, or ``call`` was taken back or
        skipped at its start-by)."""
        worker = call.worker
        try:
            outcome, emitted, handed_over = await worker.result(call)
        except BaseException:
            self._abandon(pool, call)
            raise
        if isinstance(outcome, NotStarted):
            return None  # it held no slot
        if isinstance(outcome, Skipped):  # it held the slot of the call ahead
            if not handed_over:
                pool.busy.discard(worker)
                self._finished(pool, spec, worker, "ok", 0)
                pool.release()
            return None
        init, worker.pending_init = worker.pending_init, None
        events = [emit_request(event) for event in emitted]
        if isinstance(outcome, Done):
            if not handed_over:
                pool.busy.discard(worker)
                self._finished(pool, spec, worker, outcome.status, outcome.max_memory_used_mb)
                pool.release()
            return done_result(spec, request, outcome, init, events)
        pool.busy.discard(worker)
        self._discard(worker)
        self._top_up(pool)
        pool.release()
        return exit_result(spec, request, outcome, init, events)

    def _abandon(self, pool: Pool, call: Call) -> None:
        """The caller of ``call`` is gone (cancelled): the environment may still run the
        handler, so it is discarded; a call queued behind it is run elsewhere."""
        worker = call.worker
        future = call.future
        answered = future.done() and not future.cancelled()
        if answered and (future.result() is NOT_STARTED or call.handed_over):
            return  # it held no slot, or passed it on to the call that runs now
        held = answered or call.started != 0.0
        if held:
            pool.busy.discard(worker)
            pool.release()
        self._discard(worker)

    def _answered(self, pool: Pool, worker: Worker, done: Done | Skipped) -> None:
        """An environment answered: when it stays fit for more, it gets the next
        waiting invocation at once, before the answered call's caller even runs."""
        spec = pool.spec
        if worker.in_flight > 1:
            return  # some still wait behind the running call: top up later, all at once
        if isinstance(done, Skipped) or (
            done.status in ("ok", "error")
            and done.max_memory_used_mb < spec.memory * RECYCLE_FRACTION
        ):
            self._refill(pool, worker)
            worker.send()

    def _refill(self, pool: Pool, worker: Worker) -> None:
        """Hand waiting invocations to ``worker`` now: one to start if it has nothing
        to run, and more to wait behind the running one while its calls are short
        (``PIPELINE_WITHIN``), so the environment never waits for this process. It takes
        its share of the waiting ones, so that the next environment to come free finds
        some too."""
        waiting = pool.queueable
        if not waiting or self._stopping or self._pools.get(pool.spec.key) is not pool:
            return
        spec = pool.spec
        share = -(-waiting // max(1, len(pool.busy)))
        limit = min(PIPELINE_DEPTH, worker.in_flight + share)
        while worker.in_flight < limit and worker.alive:
            if worker.in_flight and worker.in_flight * worker.last_duration > PIPELINE_WITHIN:
                return
            if spec.max_invocations and worker.invocations >= spec.max_invocations:
                return
            if not pool.hand_over(worker):
                return

    def _finished(
        self, pool: Pool, spec: FunctionSpec, worker: Worker, status: str, memory_mb: int
    ) -> None:
        """Back to idle, or recycled, or discarded, by how its last call ended."""
        # "crashed": the environment reported the invocation and is exiting.
        worker.on_answer = None
        gone = status in ("oom", "crashed") or not worker.alive or self._stopping
        if gone or self._pools.get(spec.key) is not pool:
            self._discard(worker)
        elif (spec.max_invocations and worker.invocations >= spec.max_invocations) or (
            memory_mb >= spec.memory * RECYCLE_FRACTION
        ):
            pool.recycled += 1
            self._discard(worker)
        else:
            pool.idle.append(worker)
            if self._capacity_waiters:
                self._wake()
            return
        self._top_up(pool)


def _describe(outcome: InitFailed | Exit | OSError) -> str:
    if isinstance(outcome, InitFailed):
        return f"{outcome.error_type}: {outcome.error_message}"
    if isinstance(outcome, Exit):
        return f"{outcome.reason}: {outcome.describe()}"
    return str(outcome)


__all__ = ["STOPPED_MESSAGE", "ProcessExecutor"]
