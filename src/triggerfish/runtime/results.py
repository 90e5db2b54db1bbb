"""Invocation results the executor builds: from an environment's answer, from its
death, from a failed init, and for throttled calls. Each carries Lambda's error shape
and the START / END / REPORT log lines, so every outcome reads the same way: as text, or
as Lambda's JSON records when the function's environment says ``AWS_LAMBDA_LOG_FORMAT``
is ``JSON`` (``PlatformLog``)."""

from __future__ import annotations

from typing import cast

from triggerfish.runtime.base import (
    EmitRequest,
    FunctionSpec,
    InvocationRequest,
    InvocationResult,
    Status,
)
from triggerfish.runtime.environment import Exit
from triggerfish.runtime.protocol import Done, Emitted, InitFailed, Ready
from triggerfish.runtime.report import PlatformLog, billed_duration, report_line

STOPPED_MESSAGE = "The environment was stopped before the invocation finished"


def emit_request(event: Emitted) -> EmitRequest:
    return EmitRequest(
        topic=event.topic,
        type=event.type,
        data=event.data,
        source=event.source,
        subject=event.subject,
        id=event.id,
        extensions=event.extensions,
    )


def throttled(spec: FunctionSpec, request: InvocationRequest, message: str) -> InvocationResult:
    return InvocationResult(
        request_id=request.request_id,
        version=spec.version,
        status="throttled",
        error_type="TooManyRequestsException",
        error_message=message,
        memory_size_mb=spec.memory,
    )


def failure(
    spec: FunctionSpec,
    request: InvocationRequest,
    status: Status,
    error_type: str,
    message: str,
    *,
    output: str = "",
    function_output: str = "",
    duration_ms: float = 0.0,
    started_at: float = 0.0,
    max_memory_used_mb: int = 0,
    init_duration_ms: float | None = None,
    stack_trace: list[str] | None = None,
    emitted: list[EmitRequest] | None = None,
) -> InvocationResult:
    """A result for an invocation that did not get a ``Done`` from its environment:
    ``output`` goes before its START (the init's), ``function_output`` after it."""
    request_id = request.request_id
    platform = PlatformLog.from_environment(spec.environment)
    # The text REPORT of an environment that did not answer says its status, whatever
    # it is; PlatformLog's text says only "oom", the one an environment reports itself.
    report = platform.report if platform.json else report_line
    logs = (
        output
        + platform.start(request_id, spec.lambda_version)
        + function_output
        + platform.error(request_id, error_type, message, stack_trace or [])
        + platform.end(request_id, status)
        + report(
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
        version=spec.version,
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


def done_result(
    spec: FunctionSpec,
    request: InvocationRequest,
    done: Done,
    init: Ready | None,
    emitted: list[EmitRequest],
) -> InvocationResult:
    return InvocationResult(
        request_id=request.request_id,
        version=spec.version,
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


def exit_result(
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
    return failure(
        spec,
        request,
        status,
        error_type,
        message,
        output=prefix,
        function_output=exit.output,
        duration_ms=exit.elapsed_ms,
        started_at=exit.started_at,
        max_memory_used_mb=exit.max_memory_used_mb,
        init_duration_ms=None if init is None else init.init_duration_ms,
        emitted=emitted,
    )


def init_failure(
    spec: FunctionSpec, request: InvocationRequest, outcome: InitFailed | Exit, init_timeout: float
) -> InvocationResult:
    if isinstance(outcome, InitFailed):
        return failure(
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
    return failure(
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
