"""``DurableExecutor``: the executor in front of the node's, which turns an invocation
of a durable function into one run of a durable execution.

Every path that runs functions (Invoke, asynchronous invokes, triggers, resumes) goes
through it, so a durable function needs nothing else: a payload that is a resume runs
that execution again (on the version it started on), any other starts a new one. The
caller gets the execution's result when it ended in this invocation, else the
execution's ARN and status ``RUNNING``; failures of the invocation itself (a crash, a
timeout) are the execution's to retry, not the caller's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Coroutine
from typing import Any

import orjson

from triggerfish.dispatch.runner import Resolver
from triggerfish.durable.executions import RESUMES, DurableExecutions, error_of, resumed_execution
from triggerfish.durable.store import ExecutionRecord
from triggerfish.errors import NotFoundError
from triggerfish.runtime.base import Executor, FunctionSpec, InvocationRequest, InvocationResult


class DurableExecutor:
    def __init__(
        self, inner: Executor, executions: DurableExecutions, *, resolve: Resolver
    ) -> None:
        self._inner = inner
        self._executions = executions
        self._resolve = resolve

    async def start(self) -> None:
        await self._inner.start()

    async def stop(self, *, grace: float = 10.0) -> None:
        await self._inner.stop(grace=grace)

    def free_slots(self, spec: FunctionSpec) -> int:
        return self._inner.free_slots(spec)

    async def retire(self, function: str) -> None:
        await self._inner.retire(function)

    def invoke(
        self, spec: FunctionSpec, request: InvocationRequest, *, wait: float | None = None
    ) -> Coroutine[Any, Any, InvocationResult]:
        # Most invocations are of functions that are not durable: they go to the
        # executor as they are, without a coroutine of this one in between.
        if not spec.durable and not request.payload.startswith(RESUMES):
            return self._inner.invoke(spec, request, wait=wait)
        return self._invoke(spec, request, wait)

    async def _invoke(
        self, spec: FunctionSpec, request: InvocationRequest, wait: float | None
    ) -> InvocationResult:
        executions = self._executions
        resumed = resumed_execution(request.payload)
        record: ExecutionRecord | None = None
        created = False
        if resumed is not None:
            try:
                record = await executions.store.get(resumed)
            except NotFoundError:
                record = None
            if record is not None and record.function != spec.function:
                record = None  # another function's execution is not this one's to run
        if record is None:
            settings = await executions.settings_of(spec)
            if settings is None:
                # Not durable: a payload like any other, whatever it names.
                return await self._inner.invoke(spec, request, wait=wait)
            if resumed is not None:
                return _answer(request, spec, b"null")  # forgotten: nothing to resume
            # A new execution is created already begun: one transaction, not two.
            record, created = await executions.start_execution(
                spec, settings, request.payload, begun=True
            )
        elif record.version != spec.version:
            spec = await self._resolve(record.function, record.qualifier)
        if not created:
            record = await executions.begin(record.id, spec)
        if record.ended:
            return self._outcome(request, spec, record)
        envelope = await executions.envelope(record, fresh=created)
        result = await self._inner.invoke(
            spec, dataclasses.replace(request, payload=envelope), wait=wait
        )
        if result.status == "throttled":
            # Nothing ran: the execution is woken again by its watchdog, and a caller
            # sees the throttle as for any function.
            return result
        if result.status == "ok":
            record = await executions.ended(record, result.result)
        else:
            record = await executions.failed(
                record,
                {
                    "ErrorType": result.error_type or result.status,
                    "ErrorMessage": result.error_message or "",
                },
            )
        outcome = self._outcome(request, spec, record)
        # What the function logged and used is this invocation's, whatever it returned.
        outcome.logs = result.logs
        outcome.started_at = result.started_at
        outcome.duration_ms = result.duration_ms
        outcome.billed_duration_ms = result.billed_duration_ms
        outcome.memory_size_mb = result.memory_size_mb
        outcome.max_memory_used_mb = result.max_memory_used_mb
        outcome.init_duration_ms = result.init_duration_ms
        outcome.emitted = result.emitted
        return outcome

    def _outcome(
        self, request: InvocationRequest, spec: FunctionSpec, record: ExecutionRecord
    ) -> InvocationResult:
        if record.status == "SUCCEEDED":
            return _answer(request, spec, (record.result or "null").encode())
        if record.ended:
            kind, message = error_of(record.error)
            return InvocationResult(
                request_id=request.request_id,
                status="error",
                error_type=kind,
                error_message=message or f"the durable execution ended {record.status}",
                version=spec.version,
            )
        running = {"DurableExecutionArn": self._executions.arn(record), "Status": "RUNNING"}
        return _answer(request, spec, orjson.dumps(running))


def _answer(request: InvocationRequest, spec: FunctionSpec, body: bytes) -> InvocationResult:
    return InvocationResult(
        request_id=request.request_id, status="ok", result=body, version=spec.version
    )
