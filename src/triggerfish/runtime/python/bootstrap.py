"""The Python execution environment: the process the executor starts per environment.

Run as ``python -c "from triggerfish.runtime.python.bootstrap import main; main()" FD
LIFELINE`` where FD is its end of the protocol socket (see
``triggerfish.runtime.protocol``) and LIFELINE the node's (see
``triggerfish.runtime.lifeline``), or forked by a fork server. It
reads ``Init``, limits its own memory, imports the handler (the init phase), answers
``Ready`` or ``InitFailed``, then serves ``Invoke`` messages one at a time until the
socket closes. It promises:

- one ``Done`` per ``Invoke``, with the handler's return value as JSON, or Lambda's
  error shape (class name, message, stack lines without the runtime's own frames);
- an ``Invoke`` reached after its ``start_by`` is answered ``Skipped`` and not run.
  The clock is read after the answer to the invocation ahead was written: the
  executor relies on that order to know, from its side of the socket, that such an
  invocation can no longer start;
- ``async def`` handlers run on one event loop kept for the environment's life;
- output and logging captured per invocation (see ``capture``), the memory peak
  measured per invocation;
- a ``MemoryError`` (the data rlimit was hit) or a peak over the memory size is
  reported as ``oom`` and the environment then exits; if even that report cannot be
  made, it exits with ``EXIT_OUT_OF_MEMORY``.

The memory bound is ``RLIMIT_DATA``, not ``RLIMIT_AS``: the address-space limit also
counts shared libraries and reserved-but-unused address space (glibc reserves 64 MB
per thread arena, and 8 MB per thread stack), so a 128 MB function with two threads
would fail without using the memory. ``RLIMIT_DATA`` (Linux 4.7 and later) counts
private writable mappings, which is where pymalloc arenas and large ``malloc``
blocks live, so it follows what the function really allocates and turns going over
into a catchable ``MemoryError``.
"""

from __future__ import annotations

import faulthandler
import gc
import os
import resource
import select
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import msgspec
import orjson

from triggerfish.context import Context, set_current_context
from triggerfish.errors import ValidationError
from triggerfish.runtime import snapstart
from triggerfish.runtime.base import EmitRequest
from triggerfish.runtime.lifeline import watch
from triggerfish.runtime.protocol import (
    EXIT_OUT_OF_MEMORY,
    HEADER_SIZE,
    Become,
    Done,
    Emitted,
    Init,
    InitFailed,
    Invoke,
    Ready,
    Skipped,
    ToEnvironment,
    encode_frame,
)
from triggerfish.runtime.python.capture import MemoryMeter, OutputCapture
from triggerfish.runtime.python.loader import LoadError, load_handler, user_frames
from triggerfish.runtime.report import PlatformLog
from triggerfish.runtime.tracing import trace_header

#: Below this the interpreter itself cannot run; smaller memory sizes use this bound.
MIN_DATA_LIMIT_MB = 48
#: Bytes asked of the protocol socket per read.
READ_SIZE = 65536


class _Failure(Exception):
    """A failure of the runtime around the handler (bad payload, bad return value)."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


if TYPE_CHECKING:
    import asyncio


class Preloaded(NamedTuple):
    """A handler imported before the fork (snapstart), and the capture set up for it."""

    handler: Callable[..., Any]
    capture: OutputCapture


def load(init: Init) -> Callable[..., Any] | InitFailed:
    """The init phase: import the handler. Failures come back as ``InitFailed`` whose
    duration and logs the caller fills in."""
    try:
        return load_handler(init.handler, init.code_dir)
    except LoadError as exc:
        return InitFailed(exc.error_type, exc.message, exc.stack_trace, 0.0, "")
    except MemoryError:
        gc.collect()
        message = f"Out of memory while importing the handler (Memory Size: {init.memory_mb} MB)"
        return InitFailed("Runtime.OutOfMemory", message, [], 0.0, "", out_of_memory=True)


def _hook_failure(error_type: str, exc: Exception) -> InitFailed:
    return InitFailed(error_type, f"{type(exc).__name__}: {exc}", user_frames(exc), 0.0, "")


def snapshot() -> InitFailed | None:
    """Before the template serves forks: its before-snapshot hooks."""
    try:
        snapstart.run_before_snapshot()
    except Exception as exc:
        return _hook_failure("Runtime.BeforeSnapshotError", exc)
    return None


def restore() -> InitFailed | None:
    """In an environment forked from a template: its after-restore hooks."""
    try:
        snapstart.run_after_restore()
    except Exception as exc:
        return _hook_failure("Runtime.AfterRestoreError", exc)
    return None


class Channel:
    """The environment's end of the protocol socket, as blocking reads and writes on
    its descriptor (no ``socket`` or ``asyncio`` import: they cost cold-start time).

    It waits for input in ``poll``, never in a blocking ``read``: a read sleeping on the
    socket is also woken each time the executor takes one of this side's frames (the
    kernel signals "writable" on the same wait queue, which a read does not filter), a
    wake-up the executor's thread pays for. A poll for ``POLLIN`` is woken for input
    only. Whatever arrived beyond the current frame stays buffered for the next.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._buffer = bytearray()
        self._input = select.poll()
        self._input.register(fd, select.POLLIN)
        self._decoder: msgspec.msgpack.Decoder[Init | Invoke | Become] = msgspec.msgpack.Decoder(
            ToEnvironment
        )

    def receive(self) -> Init | Invoke | Become | None:
        """The next message, or None once the socket is closed (mid-frame included)."""
        if not self._fill(HEADER_SIZE):
            return None
        end = HEADER_SIZE + int.from_bytes(self._buffer[:HEADER_SIZE], "big")
        if not self._fill(end):
            return None
        with memoryview(self._buffer)[HEADER_SIZE:end] as body:
            message = self._decoder.decode(body)
        del self._buffer[:end]
        return message

    def _fill(self, wanted: int) -> bool:
        """Read until ``wanted`` bytes are buffered; False if the socket closes first."""
        buffer = self._buffer
        while len(buffer) < wanted:
            self._input.poll()
            chunk = os.read(self._fd, READ_SIZE)
            if not chunk:
                return False
            buffer += chunk
        return True

    def send(self, message: msgspec.Struct) -> None:
        self.send_frame(encode_frame(message))

    def send_frame(self, frame: bytearray) -> None:
        written = os.write(self._fd, frame)
        if written < len(frame):
            view = memoryview(frame)[written:]
            while view:
                view = view[os.write(self._fd, view) :]


def limit_memory(memory_mb: int) -> None:
    limit = max(memory_mb, MIN_DATA_LIMIT_MB) * 1024 * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


class Environment:
    def __init__(
        self,
        channel: Channel,
        init: Init,
        *,
        preloaded: Preloaded | None = None,
        forked_at: float | None = None,
    ) -> None:
        self.channel = channel
        self.init = init
        # A fork of a snapshot keeps the template's capture: its writers write to fds 1
        # and 2, which are this environment's own output file by now.
        self.capture = preloaded.capture if preloaded else OutputCapture(init.log_limit)
        faulthandler.enable(sys.stderr)
        self.memory = MemoryMeter()
        self.handler: Callable[..., Any] | None = preloaded.handler if preloaded else None
        self.init_duration_ms: float | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.traced = False  # TRACEPARENT / TRACESTATE were set for an invocation
        self.platform: PlatformLog | None = None  # read from the variables once
        self._forked_at = forked_at

    def serve(self) -> None:
        if not self.initialise():
            return
        channel = self.channel
        while (message := channel.receive()) is not None:
            if isinstance(message, Invoke):
                start_by = message.start_by
                if start_by is not None and time.monotonic() >= start_by:
                    channel.send(Skipped(message.request_id))
                    continue
                done = self.invoke(message)
                channel.send(done)
                if done.status == "oom":
                    return

    def initialise(self) -> bool:
        init = self.init
        # A forked environment counts its init from the fork: that is what it cost.
        started = time.perf_counter() if self._forked_at is None else self._forked_at
        if self.handler is not None:
            failure = restore()
        else:
            limit_memory(init.memory_mb)
            loaded = load(init)
            if isinstance(loaded, InitFailed):
                failure = loaded
            else:
                self.handler, failure = loaded, None
        elapsed = (time.perf_counter() - started) * 1000
        if failure is not None:
            failure.init_duration_ms = elapsed
            failure.logs = self.capture.drain()
            self.channel.send(failure)
            return False
        self.init_duration_ms = elapsed
        self.channel.send(Ready(elapsed, self.capture.drain()))
        return True

    def emit(self, request: EmitRequest) -> None:
        message = Emitted(
            request.topic,
            request.type,
            request.data,
            request.source,
            request.subject,
            request.id,
            dict(request.extensions),
        )
        try:
            frame = encode_frame(message)
        except (TypeError, msgspec.EncodeError) as exc:
            raise ValidationError(f"emit: the event data cannot be serialised: {exc}") from exc
        self.channel.send_frame(frame)

    def run_async(self, awaitable: Any) -> Any:
        if self.loop is None:
            import asyncio  # only environments with async handlers pay for it

            self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)
        return self.loop.run_until_complete(awaitable)

    def invoke(self, message: Invoke) -> Done:
        init = self.init
        handler = self.handler
        assert handler is not None
        request_id = message.request_id
        self.capture.request_id = request_id
        _set_variable("_X_AMZN_TRACE_ID", message.trace_id or trace_header(request_id))
        # The W3C trace context for the function's own OpenTelemetry SDK (docs/tracing.md);
        # an environment that never had one does not touch its environment variables.
        trace_context: dict[str, str] | None = None
        if message.traceparent or self.traced:
            trace_context = _trace_context(message.traceparent, message.tracestate)
            self.traced = bool(trace_context)
        status = "ok"
        result: bytes | None = None
        error_type: str | None = None
        error_message: str | None = None
        stack_trace: list[str] = []
        self.memory.reset()
        started_at = time.time()
        started = time.perf_counter()
        deadline = time.monotonic() + init.timeout
        try:
            try:
                event = orjson.loads(message.payload) if message.payload else {}
            except orjson.JSONDecodeError as exc:
                raise _Failure(
                    "Runtime.UnmarshalError", f"Unable to parse the event: {exc}"
                ) from None
            context = Context(
                aws_request_id=request_id,
                function_name=init.function_name,
                function_version=init.function_version,
                memory_limit_in_mb=init.memory_mb,
                invoked_function_arn=message.invoked_arn,
                log_group_name=init.log_group,
                log_stream_name=init.log_stream,
                deadline=deadline,
                client_context=message.client_context,
                trace_context=trace_context,
                payload=event,
                emitter=self.emit,
            )
            set_current_context(context)
            value = handler(event, context)
            if hasattr(value, "__await__"):
                value = self.run_async(value)
            try:
                result = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
            except TypeError as exc:
                raise _Failure(
                    "Runtime.MarshalError", f"Unable to marshal response: {exc}"
                ) from None
        except _Failure as exc:
            status, error_type, error_message = "error", exc.error_type, str(exc)
        except MemoryError:
            status, error_type = "oom", "Runtime.OutOfMemory"
            error_message = f"Function ran out of memory (Memory Size: {init.memory_mb} MB)"
        except Exception as exc:
            status, error_type, error_message = "error", type(exc).__name__, str(exc)
            stack_trace = user_frames(exc)
        finally:
            set_current_context(None)
        duration_ms = (time.perf_counter() - started) * 1000
        peak = self.memory.peak_mb()
        if status == "oom":
            gc.collect()
        elif peak > init.memory_mb:
            status, error_type, result = "oom", "Runtime.OutOfMemory", None
            error_message = f"Function used {peak} MB, over its memory size of {init.memory_mb} MB"
        # Text, or Lambda's JSON records (logging: {format: json} in the manifest).
        platform = self.platform
        if platform is None:
            platform = self.platform = PlatformLog.from_environment(os.environ)
        logs = platform.start(request_id, init.function_version) + self.capture.drain()
        if status != "ok":
            logs += platform.error(
                request_id, error_type or "Error", error_message or "", stack_trace
            )
        logs += platform.end(request_id, status) + platform.report(
            request_id,
            duration_ms=duration_ms,
            memory_size_mb=init.memory_mb,
            max_memory_used_mb=peak,
            init_duration_ms=self.init_duration_ms,
            status=status,
        )
        self.init_duration_ms = None  # reported on the first invocation only
        return Done(
            status,
            result,
            error_type,
            error_message,
            stack_trace,
            logs,
            started_at,
            duration_ms,
            peak,
        )


_ENCODED = {
    name: os.environ.encodekey(name) for name in ("_X_AMZN_TRACE_ID", "TRACEPARENT", "TRACESTATE")
}


def _set_variable(name: str, value: str | None) -> None:
    """Sets (or, for None, removes) a variable of the invocation's trace context as the
    handler's Python code reads it (``os.environ``, ``os.getenv``), without ``setenv``:
    glibc keeps every distinct value ever given to ``setenv`` for the life of the
    process, so a value of its own for each invocation would grow an environment by a
    hundred bytes an invocation, for as long as it lives. The mapping's store
    (``os.environ._data``, CPython's) is updated in place instead;
    tests/unit/runtime/test_trace_header.py fails should that store change. A process
    the handler starts does not inherit these variables."""
    environ: Any = os.environ
    key = _ENCODED.get(name) or environ.encodekey(name)
    if value is None:
        environ._data.pop(key, None)
    else:
        environ._data[key] = environ.encodevalue(value)


def _trace_context(traceparent: str | None, tracestate: str | None) -> dict[str, str]:
    """Sets ``TRACEPARENT`` and ``TRACESTATE`` (OpenTelemetry's environment carrier) to
    the invocation's, or removes them; returns them as a ``propagate.extract`` carrier."""
    context: dict[str, str] = {}
    for key, name, value in (
        ("TRACEPARENT", "traceparent", traceparent),
        ("TRACESTATE", "tracestate", tracestate),
    ):
        if value:
            context[name] = value
        _set_variable(key, value or None)
    return context


def serve(
    fd: int,
    *,
    preloaded: Preloaded | None = None,
    forked_at: float | None = None,
    channel: Channel | None = None,
) -> None:
    """Serve one environment on the protocol socket ``fd`` (or ``channel``, already
    reading it) until it closes."""
    channel = channel or Channel(fd)
    try:
        init = channel.receive()
        if not isinstance(init, Init):
            os._exit(2)
        Environment(channel, init, preloaded=preloaded, forked_at=forked_at).serve()
    except MemoryError:
        os._exit(EXIT_OUT_OF_MEMORY)


def main() -> None:
    fd = int(sys.argv[1])
    lifeline = int(sys.argv[2])
    del sys.argv[2:]
    for own in (fd, lifeline):
        os.set_inheritable(own, False)  # subprocesses of the function must not hold it
    watch(lifeline)
    serve(fd)
