"""Lambda-style log lines and metering figures, shared by the executor and the
environments so both write the same shapes.

An invocation's log is ``START``, the function's output, ``END`` and ``REPORT``::

    START RequestId: 3f1c... Version: 7a1b2c
    hello
    END RequestId: 3f1c...
    REPORT RequestId: 3f1c...\tDuration: 1.23 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\t...

``Init Duration`` appears on a cold start only.
"""

from __future__ import annotations

import math


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
