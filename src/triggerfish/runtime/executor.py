"""``ProcessExecutor``: runs invocations in autoscaled pools of warm OS processes.

Per function version (``spec.key``) it keeps a ``Pool`` and scales it with demand:

- up, at once: an invocation that holds one of the version's ``max_concurrency``
  slots and finds no idle environment starts one (a cold start, reported with its
  init duration) when the node's memory budget holds it, if need be by evicting idle
  environments of other versions; else it waits for memory or for an environment of
  its version to come free. A caller that gave ``wait`` gets ``throttled`` when that
  time runs out (asynchronous events, called with no ``wait``, simply wait);
- ``min_warm`` environments are kept started ahead of demand (provisioned
  concurrency, see ``provision``); their first invocation is not a cold start;
- down: an environment idle for the version's ``idle_ttl`` (the executor's default
  when unset) is stopped, so an idle function costs no process;
- recycling: an environment is replaced after ``max_invocations`` invocations, or
  when its memory peak reaches ``RECYCLE_FRACTION`` of its memory size (a leak is
  cut before it becomes an out-of-memory failure).

How environments are started (zygotes, snapshot templates, pre-started Node.js
processes) and how they share the node's memory is ``launch.py``'s (``Launcher``).
An environment whose invocation timed out, ran out of memory or crashed, or whose
handler could not be loaded, is discarded.

An invocation waiting for a slot is handed to an environment that has nothing more to
run from the callback that reads its answer. On Python and Node.js runtimes (their
environments skip a call reached after its start-by; a ``provided`` relay does not)
invocations are also queued behind a running call while its calls are short (``PIPELINE_DEPTH``,
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
import sys
from pathlib import Path

from triggerfish.runtime.base import (
    FunctionSpec,
    InvocationRequest,
    InvocationResult,
    PoolStats,
    runtime_family,
)
from triggerfish.runtime.environment import WorkerOptions
from triggerfish.runtime.launch import Launcher
from triggerfish.runtime.pool import Pool
from triggerfish.runtime.protocol import Done, Invoke, Skipped
from triggerfish.runtime.results import (
    STOPPED_MESSAGE,
    done_result,
    emit_request,
    exit_result,
    throttled,
)
from triggerfish.runtime.sandbox import Sandbox
from triggerfish.runtime.snapshot import Template
from triggerfish.runtime.tracing import trace_header
from triggerfish.runtime.worker import NOT_STARTED, Call, NotStarted, Worker

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
#: Runtime families whose environments skip an invocation reached after its start-by.
QUEUEABLE = frozenset({"python", "nodejs"})


def _trace_context(request: InvocationRequest) -> tuple[str | None, str | None]:
    """The W3C ``traceparent`` and ``tracestate`` the handler is given."""
    trace = request.trace_id
    if trace is None or not trace.startswith("00-"):
        return None, None
    return trace, request.trace_state


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
        node_sdk: Path | None = None,
        sandbox: Sandbox | None = None,
    ) -> None:
        """``memory_capacity``: MB that environments may hold in all (0: the machine's
        memory). ``zygote``: fork environments from a zygote (else a fresh interpreter
        each). ``snapshot_ttl``: seconds a snapshot template is kept without forks.
        ``node_spares``: keep a pre-started Node.js process per runtime and memory size.
        ``node_sdk``: the folder of the AWS SDK v3 packages of Node.js functions
        (``node/sdk.py``), used once installed.
        ``sandbox``: confines every environment (``triggerfish.runtime.sandbox``), once
        started."""
        options = WorkerOptions(
            python=python_executable or sys.executable,
            log_limit=log_limit,
            work_dir=Path(work_dir) if work_dir is not None else None,
            init_timeout=init_timeout,
            sandbox=sandbox,
        )
        self._idle_ttl = idle_ttl
        self._pools: dict[str, Pool] = {}
        self._launcher = Launcher(
            options,
            self._pools,
            live=self._live,
            memory_capacity=memory_capacity,
            snapshot_ttl=snapshot_ttl,
            zygote=zygote,
            node_spares=node_spares,
            node_sdk=node_sdk,
            spare_ttl=idle_ttl,
        )
        self._inflight = 0
        self._drained: asyncio.Future[None] | None = None
        self._stopping = False
        self._reaper: asyncio.Task[None] | None = None
        self._new_pool = asyncio.Event()

    @property
    def memory_capacity_mb(self) -> int:
        return self._launcher.budget.capacity

    @property
    def memory_reserved_mb(self) -> int:
        return self._launcher.budget.reserved

    def zygote_pids(self) -> dict[str, int]:
        """The running zygotes, by interpreter."""
        zygotes = self._launcher.zygotes
        return {} if zygotes is None else zygotes.pids()

    def node_spare_pids(self) -> list[int]:
        """The pre-started Node.js processes waiting for an environment."""
        return self._launcher.node.spare_pids()

    def snapshot_pid(self, spec: FunctionSpec) -> int | None:
        pool = self._pools.get(spec.key)
        template = None if pool is None else pool.template
        return template.pid if template is not None and template.alive else None

    def pool_stats(self) -> list[PoolStats]:
        """One ``PoolStats`` per function version this executor has run or provisioned."""
        return [pool.stats() for pool in self._pools.values()]

    async def start(self) -> None:
        self._stopping = False
        if self._reaper is None:
            self._reaper = asyncio.create_task(self._reap_forever())
        await self._launcher.start()

    async def stop(self, *, grace: float = 10.0) -> None:
        """Let invocations in flight finish within ``grace`` seconds, then kill workers."""
        self._stopping = True
        for pool in self._pools.values():
            pool.refuse_waiters()
        launcher = self._launcher
        launcher.wake()
        await self._wait_drained(grace)
        launcher.killing = True
        for pool in self._pools.values():
            for worker in pool.drain():
                worker.stop_now()
                launcher.discard(worker)
        # Killed environments answer at once; the bound only guards against surprises.
        await self._wait_drained(grace + 5.0)
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
            self._reaper = None
        await launcher.settle()
        templates = [pool.template for pool in self._pools.values() if pool.template]
        self._pools.clear()
        await asyncio.gather(*(template.close() for template in templates))
        await launcher.stop()

    def free_slots(self, spec: FunctionSpec) -> int:
        """How many more invocations of ``spec`` may start now: its free concurrency
        slots, bounded by its idle environments plus what the memory budget holds."""
        if self._stopping:
            return 0
        pool = self._pools.get(spec.key)
        running = 0 if pool is None else pool.running
        idle = 0 if pool is None else len(pool.idle)
        slots = max(0, spec.max_concurrency - running)
        room = max(0, self._launcher.budget.free) // max(1, spec.memory)
        return min(slots, idle + room)

    async def provision(self, spec: FunctionSpec) -> None:
        """Start ``spec.min_warm`` environments ahead of demand (in the background) and
        keep that many; call it when a version goes live."""
        if self._stopping:
            return
        if runtime_family(spec.runtime) == "nodejs":
            self._launcher.node.prepare(spec)
        self._launcher.top_up(self._pool(spec))

    def warm(self, spec: FunctionSpec) -> bool:
        """Start one environment of a version just deployed, in the background, when it
        has none (``Launcher.warm_one``): its first call is then a warm one. True when
        one is starting."""
        if self._stopping:
            return False
        if runtime_family(spec.runtime) == "nodejs":
            self._launcher.node.prepare(spec)
        return self._launcher.warm_one(self._pool(spec))

    async def invoke(
        self, spec: FunctionSpec, request: InvocationRequest, *, wait: float | None = None
    ) -> InvocationResult:
        if self._stopping:
            return throttled(spec, request, STOPPING_MESSAGE)
        pool = self._pool(spec)
        loop = asyncio.get_running_loop()
        deadline = None if wait is None else loop.time() + wait
        client_context = dict(request.client_context) if request.client_context else None
        arn = request.invoked_arn or spec.arn
        if request.trace_id is None:  # most: the environment makes its own X-Ray header
            message = Invoke(request.request_id, request.payload, arn, None, client_context)
        else:
            message = Invoke(
                request.request_id,
                request.payload,
                arn,
                trace_header(request.request_id, request.trace_id),
                client_context,
                None,
                *_trace_context(request),
            )
        # A waiting invocation is handed to an environment as it finishes one, in the
        # same callback. On Python and Node.js runtimes it may also be queued behind a
        # running call, to start there by a time (see ``Pool.hand_over``).
        queueable = runtime_family(spec.runtime) in QUEUEABLE
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
                    self._launcher.discard(worker)
                if pool.template is not None:
                    closing.append(pool.template)
                    pool.template = None
        await asyncio.gather(*(template.close() for template in closing))

    def reap_idle(self) -> int:
        """Stop environments idle for their ``idle_ttl`` (keeping ``min_warm``), and
        snapshot templates unused for ``snapshot_ttl``; returns how many environments."""
        launcher = self._launcher
        now = asyncio.get_running_loop().time()
        reaped = 0
        for pool in self._pools.values():
            spec = pool.spec
            for worker in pool.expired(now, self._ttl(spec), spec.min_warm):
                launcher.discard(worker)
                pool.reaped += 1
                reaped += 1
            launcher.top_up(pool)
            launcher.expire_template(pool)
        launcher.node.reap()
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

    def _live(self, pool: Pool) -> bool:
        """``pool`` still takes environments: not stopping, and it serves its version."""
        return not self._stopping and self._pools.get(pool.spec.key) is pool

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

    def _take_idle(self, pool: Pool) -> Worker | None:
        worker = pool.take_idle()
        while worker is not None and not worker.alive:
            self._launcher.discard(worker)
            worker = pool.take_idle()
        return worker

    async def _obtain(
        self,
        pool: Pool,
        spec: FunctionSpec,
        request: InvocationRequest,
        message: Invoke,
        deadline: float | None,
    ) -> Worker | InvocationResult:
        """An environment for this invocation: idle, newly started, or awaited."""
        while True:
            worker = self._take_idle(pool)
            if worker is not None:
                return worker
            started = await self._launcher.start_or_wait(pool, spec, request, message, deadline)
            if started is not None:
                return started
            if self._stopping:
                return throttled(spec, request, STOPPING_MESSAGE)

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
        self._launcher.discard(worker)
        self._launcher.top_up(pool)
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
        self._launcher.discard(worker)

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
        if not waiting or not self._live(pool):
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
        gone = status in ("oom", "crashed") or not worker.alive
        launcher = self._launcher
        if gone or not self._live(pool):
            launcher.discard(worker)
        elif (spec.max_invocations and worker.invocations >= spec.max_invocations) or (
            memory_mb >= spec.memory * RECYCLE_FRACTION
        ):
            pool.recycled += 1
            launcher.discard(worker)
        else:
            pool.idle.append(worker)
            if launcher.waiters:
                launcher.wake()
            return
        launcher.top_up(pool)


__all__ = ["STOPPED_MESSAGE", "ProcessExecutor"]
