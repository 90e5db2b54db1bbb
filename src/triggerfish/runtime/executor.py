"""``ProcessExecutor``: runs invocations in pools of warm OS processes.

Per function version (``spec.key``) it keeps a ``Pool``: at most ``max_concurrency``
invocations at once, callers beyond that wait (or are throttled), idle environments
are reused most recently used first and stopped after ``idle_ttl`` seconds unused. A
new environment is started on demand: that invocation is a cold start and reports its
init duration. An environment whose invocation timed out, ran out of memory or
crashed, or whose handler could not be loaded, is discarded; the next invocation
starts a fresh one.

The executor never raises for a failed invocation: the result's status says what
happened (``ok``, ``error``, ``timeout``, ``oom``, ``crashed``, ``throttled``), with
Lambda's error shape and log lines. After ``stop()`` begins, invocations are answered
``throttled`` so that callers retry them elsewhere or later.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path
from typing import cast

from triggerfish.runtime.base import (
    EmitRequest,
    FunctionSpec,
    InvocationRequest,
    InvocationResult,
    Status,
)
from triggerfish.runtime.pool import Pool
from triggerfish.runtime.protocol import Done, Emitted, InitFailed, Invoke, Ready
from triggerfish.runtime.report import (
    billed_duration,
    end_line,
    error_lines,
    report_line,
    start_line,
)
from triggerfish.runtime.worker import Exit, Worker, WorkerOptions

DEFAULT_LOG_LIMIT = 256 * 1024
STOPPED_MESSAGE = "The environment was stopped before the invocation finished"


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
    ) -> None:
        self._options = WorkerOptions(
            python=python_executable or sys.executable,
            log_limit=log_limit,
            work_dir=Path(work_dir) if work_dir is not None else None,
            init_timeout=init_timeout,
        )
        self._idle_ttl = idle_ttl
        self._pools: dict[str, Pool] = {}
        self._inflight = 0
        self._drained: asyncio.Future[None] | None = None
        self._stopping = False
        self._killing = False
        self._reaper: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._stopping = self._killing = False
        if self._reaper is None:
            self._reaper = asyncio.create_task(self._reap_forever())

    async def stop(self, *, grace: float = 10.0) -> None:
        """Let invocations in flight finish within ``grace`` seconds, then kill workers."""
        self._stopping = True
        for pool in self._pools.values():
            pool.refuse_waiters()
        await self._wait_drained(grace)
        self._killing = True
        for pool in self._pools.values():
            for worker in pool.drain():
                worker.stop_now()
                self._discard(worker)
        self._pools.clear()
        # Killed environments answer at once; the bound only guards against surprises.
        await self._wait_drained(grace + 5.0)
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
            self._reaper = None
        while self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    def free_slots(self, spec: FunctionSpec) -> int:
        if self._stopping:
            return 0
        pool = self._pools.get(spec.key)
        if pool is None:
            return max(0, spec.max_concurrency)
        return max(0, spec.max_concurrency - pool.running)

    async def invoke(
        self, spec: FunctionSpec, request: InvocationRequest, *, wait: float | None = None
    ) -> InvocationResult:
        if self._stopping:
            return _throttled(spec, request, "Triggerfish is stopping; try again later")
        pool = self._pools.get(spec.key)
        if pool is None:
            pool = self._pools[spec.key] = Pool(spec)
        else:
            pool.spec = spec
        if not pool.try_acquire() and not await pool.acquire(wait):
            return _throttled(
                spec,
                request,
                f"Rate exceeded: function '{spec.function}' is at its concurrency limit"
                f" of {spec.max_concurrency}",
            )
        if self._stopping:
            pool.release()
            return _throttled(spec, request, "Triggerfish is stopping; try again later")
        self._inflight += 1
        try:
            return await self._run(pool, spec, request)
        finally:
            pool.release()
            self._inflight -= 1
            if self._inflight == 0 and self._drained is not None and not self._drained.done():
                self._drained.set_result(None)

    async def retire(self, function: str) -> None:
        """Stop the warm environments of every version of ``function``; invocations in
        flight finish, and their environments are then discarded."""
        for key, pool in list(self._pools.items()):
            if pool.spec.function == function:
                del self._pools[key]
                idle, pool.idle = pool.idle, []
                await asyncio.gather(*(worker.close() for worker in idle))

    def reap_idle(self) -> int:
        """Stop environments idle for ``idle_ttl`` seconds; returns how many."""
        now = asyncio.get_running_loop().time()
        reaped = 0
        for key, pool in list(self._pools.items()):
            for worker in pool.expired(now, self._idle_ttl):
                self._discard(worker)
                reaped += 1
            if pool.empty:
                del self._pools[key]
        return reaped

    async def _reap_forever(self) -> None:
        interval = min(max(self._idle_ttl / 4, 0.05), 30.0)
        while True:
            await asyncio.sleep(interval)
            self.reap_idle()

    async def _wait_drained(self, grace: float | None) -> None:
        if self._inflight == 0:
            return
        self._drained = asyncio.get_running_loop().create_future()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._drained), grace)

    def _discard(self, worker: Worker) -> None:
        worker.kill()
        task = asyncio.get_running_loop().create_task(worker.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _run(
        self, pool: Pool, spec: FunctionSpec, request: InvocationRequest
    ) -> InvocationResult:
        worker = pool.take_idle()
        while worker is not None and not worker.alive:
            self._discard(worker)
            worker = pool.take_idle()
        if worker is None:
            try:
                worker = await Worker.spawn(spec, self._options)
            except OSError as exc:
                return _failure(
                    spec, request, "error", "Runtime.StartError", f"Cannot start: {exc}"
                )
            if self._killing:  # stop()'s grace ran out while the process was starting
                self._discard(worker)
                return _failure(spec, request, "crashed", "Runtime.ExitError", STOPPED_MESSAGE)
            pool.busy.add(worker)
            try:
                ready = await worker.initialise()
            except BaseException:
                pool.busy.discard(worker)
                self._discard(worker)
                raise
            if not isinstance(ready, Ready):
                pool.busy.discard(worker)
                self._discard(worker)
                return _init_failure(spec, request, ready, self._options.init_timeout)
        else:
            pool.busy.add(worker)
        message = Invoke(
            request.request_id,
            request.payload,
            request.invoked_arn or spec.arn,
            request.trace_id,
            dict(request.client_context) if request.client_context else None,
        )
        try:
            outcome = await worker.call(message)
        except BaseException:
            pool.busy.discard(worker)
            self._discard(worker)  # it may still be running the handler
            raise
        pool.busy.discard(worker)
        init, worker.pending_init = worker.pending_init, None
        emitted = [_emit_request(event) for event in worker.emitted]
        if isinstance(outcome, Done):
            reusable = outcome.status != "oom" and worker.alive and not self._stopping
            if reusable and self._pools.get(spec.key) is pool:
                pool.idle.append(worker)
            else:
                self._discard(worker)
            return _done_result(spec, request, outcome, init, emitted)
        self._discard(worker)
        return _exit_result(spec, request, outcome, init, emitted)


def _emit_request(event: Emitted) -> EmitRequest:
    return EmitRequest(
        topic=event.topic,
        type=event.type,
        data=event.data,
        source=event.source,
        subject=event.subject,
        id=event.id,
        extensions=event.extensions,
    )


def _throttled(spec: FunctionSpec, request: InvocationRequest, message: str) -> InvocationResult:
    return InvocationResult(
        request_id=request.request_id,
        status="throttled",
        error_type="TooManyRequestsException",
        error_message=message,
        memory_size_mb=spec.memory,
    )


def _failure(
    spec: FunctionSpec,
    request: InvocationRequest,
    status: Status,
    error_type: str,
    message: str,
    *,
    output: str = "",
    duration_ms: float = 0.0,
    started_at: float = 0.0,
    max_memory_used_mb: int = 0,
    init_duration_ms: float | None = None,
    stack_trace: list[str] | None = None,
    emitted: list[EmitRequest] | None = None,
) -> InvocationResult:
    """A result for an invocation that did not get a ``Done`` from its environment."""
    request_id = request.request_id
    logs = (
        output
        + start_line(request_id, spec.version)
        + error_lines(error_type, message, stack_trace or [])
        + end_line(request_id)
        + report_line(
            request_id,
            duration_ms=duration_ms,
            memory_size_mb=spec.memory,
            max_memory_used_mb=max_memory_used_mb,
            init_duration_ms=init_duration_ms,
            status=status,
        )
    )
    return InvocationResult(
        request_id=request_id,
        status=status,
        error_type=error_type,
        error_message=message,
        stack_trace=stack_trace or [],
        logs=logs,
        started_at=started_at,
        duration_ms=duration_ms,
        billed_duration_ms=billed_duration(duration_ms) if duration_ms else 0,
        memory_size_mb=spec.memory,
        max_memory_used_mb=max_memory_used_mb,
        init_duration_ms=init_duration_ms,
        emitted=emitted or [],
    )


def _done_result(
    spec: FunctionSpec,
    request: InvocationRequest,
    done: Done,
    init: Ready | None,
    emitted: list[EmitRequest],
) -> InvocationResult:
    return InvocationResult(
        request_id=request.request_id,
        status=cast(Status, done.status),
        result=done.result,
        error_type=done.error_type,
        error_message=done.error_message,
        stack_trace=done.stack_trace,
        logs=done.logs if init is None else init.logs + done.logs,
        started_at=done.started_at,
        duration_ms=done.duration_ms,
        billed_duration_ms=billed_duration(done.duration_ms),
        memory_size_mb=spec.memory,
        max_memory_used_mb=done.max_memory_used_mb,
        init_duration_ms=None if init is None else init.init_duration_ms,
        emitted=emitted,
    )


def _exit_result(
    spec: FunctionSpec,
    request: InvocationRequest,
    exit: Exit,
    init: Ready | None,
    emitted: list[EmitRequest],
) -> InvocationResult:
    status: Status
    if exit.reason == "timeout":
        status, error_type = "timeout", "Sandbox.Timedout"
        message = f"Task timed out after {spec.timeout:.2f} seconds"
    elif exit.reason == "oom":
        status, error_type = "oom", "Runtime.OutOfMemory"
        message = f"Runtime exited: out of memory (Memory Size: {spec.memory} MB)"
    elif exit.reason == "stopped":
        status, error_type = "crashed", "Runtime.ExitError"
        message = STOPPED_MESSAGE
    else:
        status, error_type, message = "crashed", "Runtime.ExitError", exit.describe()
    prefix = "" if init is None else init.logs
    result = _failure(
        spec,
        request,
        status,
        error_type,
        message,
        output=prefix,
        duration_ms=exit.elapsed_ms,
        started_at=exit.started_at,
        max_memory_used_mb=exit.max_memory_used_mb,
        init_duration_ms=None if init is None else init.init_duration_ms,
        emitted=emitted,
    )
    # The function's own output goes between START and the error.
    head = start_line(request.request_id, spec.version)
    result.logs = result.logs.replace(head, head + exit.output, 1)
    return result


def _init_failure(
    spec: FunctionSpec, request: InvocationRequest, outcome: InitFailed | Exit, init_timeout: float
) -> InvocationResult:
    if isinstance(outcome, InitFailed):
        return _failure(
            spec,
            request,
            "oom" if outcome.out_of_memory else "error",
            outcome.error_type,
            outcome.error_message,
            output=outcome.logs,
            init_duration_ms=outcome.init_duration_ms,
            stack_trace=outcome.stack_trace,
        )
    status: Status
    if outcome.reason == "timeout":
        status, error_type = "timeout", "Runtime.InitTimeout"
        message = f"Init timed out after {init_timeout:.2f} seconds"
    elif outcome.reason == "oom":
        status, error_type = "oom", "Runtime.OutOfMemory"
        message = f"Out of memory during init (Memory Size: {spec.memory} MB)"
    elif outcome.reason == "stopped":
        status, error_type, message = "crashed", "Runtime.ExitError", STOPPED_MESSAGE
    else:
        status, error_type = "crashed", "Runtime.ExitError"
        message = outcome.describe()
    return _failure(
        spec,
        request,
        status,
        error_type,
        message,
        output=outcome.output,
        started_at=outcome.started_at,
        init_duration_ms=outcome.elapsed_ms,
        max_memory_used_mb=outcome.max_memory_used_mb,
    )
