"""The framed protocol between the executor and one execution environment.

Each frame is a 4-byte big-endian length followed by one msgpack message (msgspec
structs encoded as arrays, tagged by a one-letter name). The executor sends ``Init``
once, then ``Invoke`` messages; the environment answers ``Ready`` or
``InitFailed`` to ``Init``, and ``Emitted`` (zero or more) then ``Done`` to each
``Invoke`` (``Skipped`` instead to one that it reached after its ``start_by``). The
executor may send an ``Invoke`` while the one before it still runs; the environment
reads them in order. The frames travel over a dedicated socket, never over the
process's stdout or stderr, which carry the function's own output. This module is
imported by both sides, so it depends on msgspec and the standard library only.
"""

from __future__ import annotations

import signal
from typing import Any

import msgspec

#: Frames larger than this mean a broken peer; the environment is then discarded.
MAX_FRAME = 256 * 1024 * 1024
HEADER_SIZE = 4
#: How the executor starts a Python environment; the socket's fd is the one argument.
BOOT_CODE = "from triggerfish.runtime.python.bootstrap import main; main()"
#: Exit status of an environment that ran out of memory before it could report it.
EXIT_OUT_OF_MEMORY = 197


class Init(msgspec.Struct, tag="i", tag_field="k", array_like=True):
    handler: str
    function_name: str
    function_version: str
    memory_mb: int
    timeout: float
    log_limit: int
    log_group: str
    log_stream: str
    code_dir: str


class Invoke(msgspec.Struct, tag="v", tag_field="k", array_like=True):
    request_id: str
    payload: bytes
    invoked_arn: str
    #: The X-Ray trace header (``_X_AMZN_TRACE_ID``) when the invocation continues a
    #: trace; None: the environment makes the invocation's own from its request id
    #: (``runtime.tracing.trace_header``), so the node spends nothing on it.
    trace_id: str | None = None
    client_context: dict[str, Any] | None = None
    #: ``time.monotonic()`` (one clock for every process of the machine) by which the
    #: environment must have started the invocation; reached later, it is not run but
    #: answered ``Skipped``. None: no limit. The executor sets it on an invocation that
    #: waits in the environment behind a running one, and takes the invocation back
    #: once that time has passed before the environment answered the one ahead.
    start_by: float | None = None
    #: The W3C trace context the handler continues (``TRACEPARENT`` and ``TRACESTATE``
    #: in its environment, ``context.trace_context``); None: the invocation has none.
    traceparent: str | None = None
    tracestate: str | None = None


class Ready(msgspec.Struct, tag="r", tag_field="k", array_like=True):
    init_duration_ms: float
    logs: str  # what the module printed while it was imported


class InitFailed(msgspec.Struct, tag="f", tag_field="k", array_like=True):
    error_type: str
    error_message: str
    stack_trace: list[str]
    init_duration_ms: float
    logs: str
    out_of_memory: bool = False


class Emitted(msgspec.Struct, tag="e", tag_field="k", array_like=True):
    topic: str
    type: str
    data: Any
    source: str | None = None
    subject: str | None = None
    id: str | None = None
    extensions: dict[str, str | int | bool] = {}


class Done(msgspec.Struct, tag="d", tag_field="k", array_like=True):
    status: str  # "ok", "error" or "oom"
    result: bytes | None
    error_type: str | None
    error_message: str | None
    stack_trace: list[str]
    logs: str  # START ... END ... REPORT, formatted by the environment
    started_at: float
    duration_ms: float
    max_memory_used_mb: int


class Skipped(msgspec.Struct, tag="x", tag_field="k", array_like=True):
    """The answer to an ``Invoke`` that the environment reached after its ``start_by``:
    it did not run."""

    request_id: str


class Become(msgspec.Struct, tag="b", tag_field="k", array_like=True):
    """To a blank environment (forked ahead of need, see ``Spawn.blank``): the
    function it now serves, before its ``Init``. ``uid`` and ``gid``: the user it
    becomes, None to stay the fork server's; ``read`` and ``write``: its Landlock fence,
    as in ``Confinement``."""

    cwd: str
    env: dict[str, str]
    uid: int | None = None
    gid: int | None = None
    read: list[str] = []
    write: list[str] = []


ToEnvironment = Init | Invoke | Become
FromEnvironment = Ready | InitFailed | Emitted | Done | Skipped


# The fork-server protocol (see ``triggerfish.runtime.zygote``). One message per
# SOCK_SEQPACKET packet, without a length header; descriptors ride along as
# SCM_RIGHTS. The executor sends ``Spawn``; a fork server answers ``Started`` once
# when it is ready (a template answers ``Ready`` or ``InitFailed`` instead), then
# ``Spawned`` or ``SpawnFailed`` per ``Spawn`` and ``Exited`` whenever a child ends.


class Confinement(msgspec.Struct, array_like=True, frozen=True):
    """What a new process does to itself before running any of the function's code
    (``triggerfish.runtime.sandbox.confine``): join the cgroups whose ``cgroup.procs``
    files are listed, become ``uid`` and ``gid``, then, where ``read`` or ``write`` is
    given, fence itself with Landlock to those folders (``triggerfish.runtime.landlock``)."""

    uid: int
    gid: int
    procs: list[str] = []
    read: list[str] = []
    write: list[str] = []


class Spawn(msgspec.Struct, tag="s", tag_field="k", array_like=True):
    """Fork a child. Descriptors: its end of the channel, then its output file. With
    ``template`` set, the child imports the handler and becomes a fork server itself
    (the channel is then its control socket)."""

    ref: int
    cwd: str
    env: dict[str, str]
    template: Init | None = None
    confine: Confinement | None = None
    #: Fork a blank: it joins the cgroups of ``confine`` (moving a process between
    #: cgroups can wait for the kernel for milliseconds: a blank does it before it is
    #: needed), then waits for a ``Become`` on its channel; ``cwd`` and ``env`` are
    #: ignored.
    blank: bool = False


class Started(msgspec.Struct, tag="S", tag_field="k", array_like=True):
    pid: int


class Spawned(msgspec.Struct, tag="P", tag_field="k", array_like=True):
    ref: int
    pid: int


class SpawnFailed(msgspec.Struct, tag="F", tag_field="k", array_like=True):
    ref: int
    message: str


class Exited(msgspec.Struct, tag="X", tag_field="k", array_like=True):
    pid: int
    returncode: int  # as subprocess reports it: negative for a signal


FromForkServer = Started | Spawned | SpawnFailed | Exited | Ready | InitFailed


class ProtocolError(Exception):
    """A peer sent something that is not a valid frame; the channel is unusable."""


_encoder = msgspec.msgpack.Encoder()


def encode_frame(message: msgspec.Struct) -> bytearray:
    """One frame: the length header then the msgpack body, in a fresh buffer."""
    buffer = bytearray(HEADER_SIZE)
    _encoder.encode_into(message, buffer, HEADER_SIZE)
    size = len(buffer) - HEADER_SIZE
    if size > MAX_FRAME:
        raise ProtocolError(f"frame of {size} bytes is over the limit of {MAX_FRAME}")
    buffer[:HEADER_SIZE] = size.to_bytes(HEADER_SIZE, "big")
    return buffer


def append_frame(buffer: bytearray, message: msgspec.Struct) -> None:
    """Add one frame at the end of ``buffer`` (several frames, one write)."""
    start = len(buffer)
    buffer += bytes(HEADER_SIZE)
    _encoder.encode_into(message, buffer, start + HEADER_SIZE)
    size = len(buffer) - start - HEADER_SIZE
    if size > MAX_FRAME:
        del buffer[start:]
        raise ProtocolError(f"frame of {size} bytes is over the limit of {MAX_FRAME}")
    buffer[start : start + HEADER_SIZE] = size.to_bytes(HEADER_SIZE, "big")


class FrameReader:
    """Incremental decoder: feed it bytes as they arrive, get whole messages back."""

    __slots__ = ("_buffer", "_decoder")

    def __init__(self, kind: Any) -> None:
        self._buffer = bytearray()
        self._decoder: msgspec.msgpack.Decoder[Any] = msgspec.msgpack.Decoder(kind)

    def feed(self, data: bytes) -> list[Any]:
        buffer = self._buffer
        buffer += data
        messages: list[Any] = []
        start = 0
        end = len(buffer)
        while end - start >= HEADER_SIZE:
            size = int.from_bytes(buffer[start : start + HEADER_SIZE], "big")
            if size > MAX_FRAME:
                raise ProtocolError(f"frame of {size} bytes is over the limit of {MAX_FRAME}")
            stop = start + HEADER_SIZE + size
            if stop > end:
                break
            try:
                body = memoryview(buffer)[start + HEADER_SIZE : stop]
                try:
                    messages.append(self._decoder.decode(body))
                finally:
                    body.release()
            except msgspec.DecodeError as exc:
                raise ProtocolError(f"undecodable frame: {exc}") from exc
            start = stop
        if start:
            del buffer[:start]
        return messages


def describe_exit(code: int) -> str:
    """Lambda's words for how an environment's process ended (exit status or signal)."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "unknown signal"
        return f"Runtime exited with error: signal {-code} ({name})"
    return f"Runtime exited with error: exit status {code}"
