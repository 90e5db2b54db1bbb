"""Lambda-style log lines and metering figures, shared by the executor and the
environments so both write the same shapes.

An invocation's log is ``START``, the function's output, ``END`` and ``REPORT``::

    START RequestId: 3f1c... Version: 7a1b2c
    hello
    END RequestId: 3f1c...
    REPORT RequestId: 3f1c...\tDuration: 1.23 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\t...

``Init Duration`` appears on a cold start only.

A function whose manifest says ``logging: {format: json}`` (``AWS_LAMBDA_LOG_FORMAT``
is then ``JSON`` in its environment) gets Lambda's JSON records instead
(``PlatformLog``): ``platform.start``, ``platform.runtimeDone`` and ``platform.report``
at INFO, written only when ``system_level`` (``TRIGGERFISH_SYSTEM_LOG_LEVEL``) lets INFO
through, and a failed invocation's error as an ``ERROR`` record of the function's log.
This module runs inside environments too, on the function's own interpreter: it uses
the standard library only.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping


def billed_duration(duration_ms: float) -> int:
    """Whole milliseconds, rounded up, at least one."""
    return max(1, math.ceil(duration_ms))


def start_line(request_id: str, version: str) -> str:
    return f"START RequestId: {request_id} Version: {version}\n"


def end_line(request_id: str) -> str:
    return f"END RequestId: {request_id}\n"


def report_line(
    request_id: str,
    *,
    duration_ms: float,
    memory_size_mb: int,
    max_memory_used_mb: int,
    init_duration_ms: float | None = None,
    status: str | None = None,
) -> str:
    line = (
        f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms"
        f"\tBilled Duration: {billed_duration(duration_ms)} ms"
        f"\tMemory Size: {memory_size_mb} MB\tMax Memory Used: {max_memory_used_mb} MB"
    )
    if init_duration_ms is not None:
        line += f"\tInit Duration: {init_duration_ms:.2f} ms"
    if status is not None:
        line += f"\tStatus: {status}"
    return line + "\n"


def error_lines(error_type: str, message: str, stack_trace: list[str]) -> str:
    """The ``[ERROR]`` block written to the log when a handler fails."""
    text = f"[ERROR] {error_type}: {message}\n"
    if stack_trace:
        text += "Traceback (most recent call last):\n" + "".join(stack_trace)
        if not text.endswith("\n"):
            text += "\n"
    return text


def truncation_marker(dropped: int) -> str:
    return f"[Triggerfish: log truncated, {dropped} bytes dropped]\n"


def cap_output(output: bytes, limit: int, already_dropped: int = 0) -> str:
    """Decode captured output, keeping at most ``limit`` bytes and saying how much went."""
    dropped = already_dropped
    if len(output) > limit:
        dropped += len(output) - limit
        output = output[:limit]
    text = output.decode("utf-8", "backslashreplace")
    if text and not text.endswith("\n"):
        text += "\n"
    if dropped:
        text += truncation_marker(dropped)
    return text


#: Lambda's system log levels, most verbose first; the platform records are INFO.
SYSTEM_LEVELS = ("DEBUG", "INFO", "WARN")


def rfc3339_ms(stamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(stamp)) + f".{int(stamp % 1 * 1000):03d}Z"


class PlatformLog:
    """The platform's lines of an invocation, as text or as Lambda's JSON records."""

    def __init__(self, log_format: str = "text", system_level: str = "INFO") -> None:
        self.json = log_format.upper() == "JSON"
        level = system_level.upper()
        self._platform = not self.json or SYSTEM_LEVELS.index(
            level if level in SYSTEM_LEVELS else "INFO"
        ) <= SYSTEM_LEVELS.index("INFO")

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> PlatformLog:
        return cls(
            environ.get("AWS_LAMBDA_LOG_FORMAT", "text"),
            environ.get("TRIGGERFISH_SYSTEM_LOG_LEVEL", "INFO"),
        )

    def _record(self, kind: str, record: dict[str, object]) -> str:
        if not self._platform:
            return ""
        line = {"time": rfc3339_ms(time.time()), "type": kind, "record": record}
        return json.dumps(line, separators=(",", ":")) + "\n"

    def start(self, request_id: str, version: str) -> str:
        if not self.json:
            return start_line(request_id, version)
        return self._record("platform.start", {"requestId": request_id, "version": version})

    def error(self, request_id: str, error_type: str, message: str, trace: list[str]) -> str:
        if not self.json:
            return error_lines(error_type, message, trace)
        line = {
            "timestamp": rfc3339_ms(time.time()),
            "level": "ERROR",
            "message": f"{error_type}: {message}",
            "errorType": error_type,
            "errorMessage": message,
            "stackTrace": [frame.rstrip("\n") for frame in trace],
            "requestId": request_id,
        }
        return json.dumps(line, separators=(",", ":")) + "\n"

    def end(self, request_id: str, status: str = "ok") -> str:
        if not self.json:
            return end_line(request_id)
        done = "success" if status == "ok" else "timeout" if status == "timeout" else "error"
        return self._record("platform.runtimeDone", {"requestId": request_id, "status": done})

    def report(
        self,
        request_id: str,
        *,
        duration_ms: float,
        memory_size_mb: int,
        max_memory_used_mb: int,
        init_duration_ms: float | None = None,
        status: str = "ok",
    ) -> str:
        if not self.json:
            return report_line(
                request_id,
                duration_ms=duration_ms,
                memory_size_mb=memory_size_mb,
                max_memory_used_mb=max_memory_used_mb,
                init_duration_ms=init_duration_ms,
                status="oom" if status == "oom" else None,
            )
        metrics: dict[str, object] = {
            "durationMs": round(duration_ms, 3),
            "billedDurationMs": billed_duration(duration_ms),
            "memorySizeMB": memory_size_mb,
            "maxMemoryUsedMB": max_memory_used_mb,
        }
        if init_duration_ms is not None:
            metrics["initDurationMs"] = round(init_duration_ms, 3)
        done = "success" if status == "ok" else status
        return self._record(
            "platform.report", {"requestId": request_id, "metrics": metrics, "status": done}
        )
