"""The server's own log lines: text for people, or one JSON object a line for log
collectors (``log_format = "json"``, ``triggerfish up --log-format json``).

A JSON line has ``timestamp`` (RFC 3339, UTC, milliseconds), ``level``, ``logger`` and
``message``, then every field a caller passed with ``extra=``, and ``exception`` with
the traceback when there is one. A value JSON cannot carry is written as its ``str``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Literal

import orjson

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# The attributes every LogRecord has: anything else came from ``extra=``.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "timestamp": _rfc3339(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in record.__dict__.items():
            if name not in _STANDARD and not name.startswith("_") and name not in line:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(line, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


class Repeats(logging.Filter):
    """Lets the first of a run of alike warnings and errors through, then holds back the
    others for ``window`` seconds and counts them: the next one after that carries the
    count (``... (repeated 79 times in the last 10 s)``). A failure that hits every
    request so logs a few lines, not one (with its traceback) per request.

    Alike: the same logger, level, message template and exception type; the values
    put into the template may differ."""

    def __init__(
        self, *, window: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.window = window
        self._clock = clock
        # key -> (when the one let through was, how many were held back since)
        self._runs: dict[tuple[object, ...], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        exc_type = record.exc_info[0] if record.exc_info else None
        key = (record.name, record.levelno, str(record.msg), exc_type)
        now = self._clock()
        shown = self._runs.get(key)
        if shown is not None and now - shown[0] < self.window:
            self._runs[key] = (shown[0], shown[1] + 1)
            return False
        if len(self._runs) > 1000:  # keys are templates: few, but bound them anyway
            self._runs.clear()
        self._runs[key] = (now, 0)
        if shown is not None and shown[1]:
            record.msg = f"{record.msg} (repeated {shown[1]} times in the last {self.window:g} s)"
        return True


def configure_logging(level: str, log_format: str) -> None:
    """Send the process's log records to standard error, in ``log_format``; a repeated
    warning or error is written once with a count (``Repeats``)."""
    handler = logging.StreamHandler()
    handler.addFilter(Repeats())
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    # uvicorn's text handlers do not pass through the one above: its errors (a request
    # that failed, with the traceback) are held back on their logger.
    uvicorn_errors = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, Repeats) for f in uvicorn_errors.filters):
        uvicorn_errors.addFilter(Repeats())


def _rfc3339(created: float) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created % 1 * 1000):03d}Z"
