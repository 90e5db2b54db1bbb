"""Inside an environment: the function's output, its logging, and its memory peak.

The executor gives the environment one in-memory file (a memfd) as both fd 1 and fd 2,
opened for appending. ``sys.stdout`` and ``sys.stderr`` become unbuffered writers on it
that stop writing once the invocation's byte budget is spent, so Python-level output is
capped as it is produced; output written at the file-descriptor level (C extensions,
subprocesses) lands in the same file in order and is capped when read. After each
invocation the file is read and emptied, so output never bleeds into the next one;
when the environment dies, the executor reads what is left from its own descriptor.

``logging`` gets a root handler writing Lambda's line shape
(``[LEVEL]\\t<utc time>\\t<request id>\\t<message>``) to ``sys.stderr``; with
``AWS_LAMBDA_LOG_FORMAT=JSON`` (``logging: {format: json}`` in the manifest), Lambda's
JSON instead: one object a record with ``timestamp``, ``level``, ``message``, ``logger``
and ``requestId``, the fields given with ``extra=``, and ``errorType``,
``errorMessage`` and ``stackTrace`` for an exception. ``AWS_LAMBDA_LOG_LEVEL`` sets the
root logger's level (Lambda's ``TRACE`` is ``DEBUG``, ``WARN`` ``WARNING``, ``FATAL``
``CRITICAL``).

The memory peak is the environment's peak RSS (VmHWM), reset before each invocation
through ``/proc/self/clear_refs``; without those files it falls back to ``ru_maxrss``,
which cannot be reset and so reports the environment's lifetime peak.
"""

from __future__ import annotations

import io
import json
import logging
import os
import resource
import sys
import time
import traceback
from typing import Any

from triggerfish.runtime.report import cap_output

OUTPUT_FD = 1


class _Budget:
    __slots__ = ("dropped", "remaining")

    def __init__(self, limit: int) -> None:
        self.remaining = limit
        self.dropped = 0


class CappedWriter(io.RawIOBase):
    """A raw binary writer on one descriptor that drops what is over the budget."""

    def __init__(self, fd: int, budget: _Budget) -> None:
        super().__init__()
        self._fd = fd
        self._budget = budget

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def isatty(self) -> bool:
        return False

    def write(self, data: Any) -> int:
        size = len(data)
        budget = self._budget
        if size <= budget.remaining:
            budget.remaining -= size
            os.write(self._fd, data)
        else:
            room = budget.remaining
            if room:
                os.write(self._fd, bytes(data)[:room])
            budget.remaining = 0
            budget.dropped += size - room
        return size


class _RequestIdFilter(logging.Filter):
    def __init__(self, capture: OutputCapture) -> None:
        super().__init__()
        self._capture = capture

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = self._capture.request_id
        return True


class _LambdaFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        text = (
            f"[{record.levelname}]\t{stamp}.{int(record.msecs):03d}Z"
            f"\t{getattr(record, 'aws_request_id', '')}\t{record.getMessage()}"
        )
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            text += "\n" + self.formatStack(record.stack_info)
        return text


_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message", "asctime", "taskName", "aws_request_id",
}  # fmt: skip


class _LambdaJsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        line: dict[str, Any] = {
            "timestamp": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
            "requestId": getattr(record, "aws_request_id", ""),
        }
        for name, value in record.__dict__.items():
            if name not in _STANDARD and not name.startswith("_") and name not in line:
                line[name] = value
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            line["errorType"] = type(error).__name__
            line["errorMessage"] = str(error)
            line["stackTrace"] = traceback.format_tb(error.__traceback__)
        return json.dumps(line, default=str, ensure_ascii=False)


_LAMBDA_LEVELS = {"TRACE": "DEBUG", "WARN": "WARNING", "FATAL": "CRITICAL"}


class OutputCapture:
    """Owns fd 1/2 of the environment and turns them into per-invocation text."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.request_id = ""
        self._budget = _Budget(limit)
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
        sys.stdout = self._text_stream(1)
        sys.stderr = self._text_stream(2)
        handler = logging.StreamHandler(sys.stderr)
        as_json = os.environ.get("AWS_LAMBDA_LOG_FORMAT", "").upper() == "JSON"
        handler.setFormatter(_LambdaJsonFormatter() if as_json else _LambdaFormatter())
        handler.addFilter(_RequestIdFilter(self))
        root = logging.getLogger()
        root.addHandler(handler)
        level = os.environ.get("AWS_LAMBDA_LOG_LEVEL", "").upper()
        level = _LAMBDA_LEVELS.get(level, level)
        if level and level in logging.getLevelNamesMapping():
            root.setLevel(level)

    def _text_stream(self, fd: int) -> io.TextIOWrapper:
        return io.TextIOWrapper(
            CappedWriter(fd, self._budget),  # type: ignore[arg-type]
            encoding="utf-8",
            errors="backslashreplace",
            write_through=True,
        )

    def begin(self, request_id: str) -> None:
        self.request_id = request_id

    def drain(self) -> str:
        """The output since the last drain, capped, and empty the file."""
        budget = self._budget
        size = os.fstat(OUTPUT_FD).st_size
        if size == 0 and budget.dropped == 0:
            return ""
        data = os.pread(OUTPUT_FD, min(size, self.limit + 1), 0) if size else b""
        os.ftruncate(OUTPUT_FD, 0)
        text = cap_output(data, self.limit, budget.dropped + max(0, size - self.limit - 1))
        budget.remaining = self.limit
        budget.dropped = 0
        return text


class MemoryMeter:
    """Peak resident memory of this process, in MB, per invocation where possible.

    ``reset`` lowers the kernel's high-water mark of resident memory to what is resident
    now (``/proc/self/clear_refs``), so the next peak is the invocation's own. The peak
    is read with ``getrusage`` (a system call of a microsecond) when it follows that
    mark, which a started or forked environment's does; otherwise, when the process
    inherited a higher figure from the program it was started from, from
    ``/proc/self/status`` (several times as long)."""

    def __init__(self) -> None:
        self._clear_fd: int | None = None
        self._status_fd: int | None = None
        self._rusage = False
        try:
            self._clear_fd = os.open("/proc/self/clear_refs", os.O_WRONLY | os.O_CLOEXEC)
            self._status_fd = os.open("/proc/self/status", os.O_RDONLY | os.O_CLOEXEC)
            os.write(self._clear_fd, b"5")
        except OSError:
            self._close()
            return
        marked = self._status_kb()
        # Read after the mark: resident memory only grows in between, by little.
        self._rusage = marked is not None and _rusage_kb() <= marked + 1024

    def _close(self) -> None:
        for fd in (self._clear_fd, self._status_fd):
            if fd is not None:
                os.close(fd)
        self._clear_fd = self._status_fd = None

    def reset(self) -> None:
        if self._clear_fd is not None:
            os.write(self._clear_fd, b"5")

    def peak_mb(self) -> int:
        kilobytes = None if self._rusage else self._status_kb()
        if kilobytes is None:
            kilobytes = _rusage_kb()
        return (kilobytes + 1023) // 1024

    def _status_kb(self) -> int | None:
        if self._status_fd is None:
            return None
        status = os.pread(self._status_fd, 8192, 0)
        start = status.find(b"VmHWM:")
        if start < 0:
            return None
        return int(status[start + 6 : status.index(b"kB", start)])


def _rusage_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
