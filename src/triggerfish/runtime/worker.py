"""The executor's side of one execution environment (one OS process).

A ``Worker`` starts the environment's process (for Python: forked from a snapshot
template or from the zygote of its interpreter, or else a fresh interpreter; for
Node.js: a pre-started ``node`` or a fresh one, see ``node/launcher.py``; for
``provided``: the relay of ``provided/relay.py``) with a clean environment,
its code directory as working directory, a dedicated socket for the protocol and one
in-memory file as stdout and stderr. It sends ``Init`` and ``Invoke`` messages and waits for the
answer, and it enforces the limits from outside:

- the timeout: past it the whole process group gets SIGKILL and the call ends with an
  ``Exit`` whose reason is ``timeout``;
- memory: while a call runs longer than ``WATCH_INTERVAL`` the process's RSS is read
  from ``/proc`` at that interval, and a process over its memory size is killed with
  reason ``oom`` (the data rlimit inside the environment catches most cases first);
- death: when the socket closes the process is reaped and the call ends with reason
  ``crashed`` and its exit status or signal.

A call never hangs: every wait has a timer, and a process that closed its socket but
does not exit is killed after ``EXIT_GRACE`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from triggerfish.runtime.base import FunctionSpec, runtime_family
from triggerfish.runtime.node.launcher import NodeLauncher
from triggerfish.runtime.protocol import (
    BOOT_CODE,
    EXIT_OUT_OF_MEMORY,
    Done,
    Emitted,
    FrameReader,
    FromEnvironment,
    Init,
    InitFailed,
    Invoke,
    ProtocolError,
    Ready,
    describe_exit,
    encode_frame,
)
from triggerfish.runtime.provided.relay import RELAY_CODE
from triggerfish.runtime.report import cap_output
from triggerfish.runtime.zygote import ForkServer, Zygotes

WATCH_INTERVAL = 0.1
#: A first call larger than this is sent once the environment runs, not queued ahead.
QUEUE_LIMIT = 64 * 1024
EXIT_GRACE = 1.0
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
#: What V8 prints before it aborts the process at its heap limit.
HEAP_EXHAUSTED = "JavaScript heap out of memory"

ExitReason = Literal["timeout", "oom", "crashed", "stopped"]


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    python: str
    log_limit: int
    work_dir: Path | None
    init_timeout: float


@dataclass(frozen=True, slots=True)
class Exit:
    """The environment ended during a call."""

    reason: ExitReason
    returncode: int | None
    output: str  # what it wrote during the call, capped
    started_at: float
    elapsed_ms: float
    max_memory_used_mb: int

    def describe(self) -> str:
        code = self.returncode
        if code is None:
            return "Runtime exited without providing a reason"
        return describe_exit(code)


class _Lost:
    """Marker result: the socket closed (or the timer fired) before an answer came."""


_LOST = _Lost()


class _Link(asyncio.Protocol):
    def __init__(self, worker: Worker) -> None:
        self._worker = worker
        self._reader = FrameReader(FromEnvironment)

    def data_received(self, data: bytes) -> None:
        try:
            messages = self._reader.feed(data)
        except ProtocolError:
            self._worker.kill()
            return
        for message in messages:
            self._worker._received(message)

    def connection_lost(self, exc: Exception | None) -> None:
        self._worker._lost()


def environment_variables(
    spec: FunctionSpec, scratch: str, init_type: str = "on-demand"
) -> dict[str, str]:
    """A clean environment: the function's variables, then Lambda's (which win)."""
    env: dict[str, str] = {"PATH": DEFAULT_PATH, "LANG": "C.UTF-8", "TZ": "UTC"}
    env.update(spec.environment)
    env.update(
        {
            "AWS_LAMBDA_FUNCTION_NAME": spec.function,
            "AWS_LAMBDA_FUNCTION_VERSION": spec.version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.function}",
            "AWS_LAMBDA_LOG_STREAM_NAME": log_stream(spec),
            "AWS_LAMBDA_INITIALIZATION_TYPE": init_type,
            "AWS_REGION": spec.region,
            "AWS_DEFAULT_REGION": spec.region,
            "LAMBDA_TASK_ROOT": str(spec.code_dir),
            "_HANDLER": spec.handler,
            "TRIGGERFISH_FUNCTION": spec.function,
            "TRIGGERFISH_VERSION": spec.version,
            "TMPDIR": scratch,
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def scratch_directory(spec: FunctionSpec, options: WorkerOptions) -> str:
    if options.work_dir is None:
        return tempfile.gettempdir()
    scratch = options.work_dir / "tmp" / spec.function.replace("/", "_")
    scratch.mkdir(parents=True, exist_ok=True)
    return str(scratch)


class ProcessHandle(Protocol):
    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    @property
    def exited(self) -> bool:
        """Known to have ended (cheap: no system call)."""

    def finished(self) -> bool:
        """Whether it ended, reaping it when it is ours to reap."""

    def kill(self) -> None: ...


class SpawnedProcess:
    """A fresh interpreter this process started (``subprocess.Popen``)."""

    __slots__ = ("_popen", "pid")

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self._popen = popen
        self.pid = popen.pid

    @property
    def returncode(self) -> int | None:
        return self._popen.returncode

    @property
    def exited(self) -> bool:
        return self._popen.returncode is not None

    def finished(self) -> bool:
        return self._popen.poll() is not None

    def kill(self) -> None:
        if self._popen.returncode is not None:
            return
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except OSError:
            with contextlib.suppress(OSError):
                self._popen.kill()


def _popen(
    python: str,
    spec: FunctionSpec,
    env: dict[str, str],
    theirs: socket.socket,
    output_fd: int,
    boot: str = BOOT_CODE,
) -> SpawnedProcess:
    # A blocking fork/exec of a few milliseconds, cheaper than asyncio's subprocess
    # machinery (a child watcher per process on 3.11).
    popen = subprocess.Popen(
        [python, "-c", boot, str(theirs.fileno())],
        cwd=spec.code_dir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=output_fd,
        stderr=output_fd,
        pass_fds=(theirs.fileno(),),
        start_new_session=True,
    )
    return SpawnedProcess(popen)


def init_message(spec: FunctionSpec, options: WorkerOptions) -> Init:
    return Init(
        handler=spec.handler,
        function_name=spec.function,
        function_version=spec.version,
        memory_mb=spec.memory,
        timeout=spec.timeout,
        log_limit=options.log_limit,
        log_group=f"/aws/lambda/{spec.function}",
        log_stream=log_stream(spec),
        code_dir=str(spec.code_dir),
    )


def log_stream(spec: FunctionSpec) -> str:
    return f"{time.strftime('%Y/%m/%d')}/[{spec.version}]triggerfish"


def output_file(name: str, directory: str) -> int:
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create(name, os.MFD_CLOEXEC)
    else:  # pragma: no cover - platforms without memfd
        fd, path = tempfile.mkstemp(dir=directory)
        os.unlink(path)
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_APPEND)
    return fd


def read_output(fd: int, options: WorkerOptions) -> str:
    """What a process wrote to its output file, capped at the log limit."""
    limit = options.log_limit
    size = os.fstat(fd).st_size
    data = os.pread(fd, limit + 1, 0)
    return cap_output(data, limit, max(0, size - limit - 1))


def _read_status_kb(pid: int, field: bytes) -> int | None:
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(field):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


class Worker:
    """One environment's process, seen from the executor."""

    def __init__(
        self,
        spec: FunctionSpec,
        options: WorkerOptions,
        process: ProcessHandle,
        output_fd: int,
    ) -> None:
        self.spec = spec
        self._options = options
        self._process = process
        self._output_fd: int | None = output_fd
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[Any] | None = None
        self._verdict: ExitReason | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._deadline = 0.0
        self._peak_mb = 0
        self.emitted: list[Emitted] = []
        self.last_used = self._loop.time()
        #: Init duration and init output, until the first call reports them.
        self.pending_init: Ready | None = None
        self.invocations = 0
        self._inbox: deque[Any] = deque()
        self._queued_call = False
        #: Memory budget (MB) this environment holds; the executor releases it.
        self.reserved_mb = 0

    @classmethod
    async def start(
        cls,
        spec: FunctionSpec,
        options: WorkerOptions,
        *,
        init_type: str = "on-demand",
        zygotes: Zygotes | None = None,
        template: ForkServer | None = None,
        first: Invoke | None = None,
        node: NodeLauncher | None = None,
    ) -> Worker:
        """Start the environment's process: for Python, forked from ``template`` (a
        snapshot) when given, else from the zygote of its interpreter, else as a fresh
        interpreter; for Node.js, through ``node``; for ``provided``, as a relay.
        Raises ``OSError`` when it cannot be started (``ForkServerGone`` when the
        template died). ``first``, when given, is queued behind the Init: the next
        ``call`` waits for its answer without sending it again."""
        scratch_dir = scratch_directory(spec, options)
        env = environment_variables(spec, scratch_dir, init_type)
        family = runtime_family(spec.runtime)
        process: ProcessHandle | None = None
        if family == "nodejs":
            if node is None:
                raise OSError(f"runtime {spec.runtime}: Node.js environments are not enabled")
            launched = node.launch(spec, env)
            ours, output_fd = launched.sock, launched.output_fd
            process = SpawnedProcess(launched.popen)
        else:
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            output_fd = output_file(f"triggerfish-{spec.function}", scratch_dir)
            python = spec.python or options.python
            try:
                fds = [theirs.fileno(), output_fd]
                if family != "python":
                    pass  # zygotes and snapshots hold the Python runtime only
                elif template is not None:
                    process = await template.spawn(str(spec.code_dir), env, fds)
                elif zygotes is not None:
                    process = await zygotes.spawn(python, str(spec.code_dir), env, fds)
                if process is None:
                    boot = RELAY_CODE if family == "provided" else BOOT_CODE
                    process = _popen(python, spec, env, theirs, output_fd, boot)
            except BaseException:
                ours.close()
                os.close(output_fd)
                raise
            finally:
                theirs.close()
        # The Init (and the first call) wait in the socket, so the environment reads
        # them as soon as it runs: no round trip between starting and running.
        try:
            ours.sendall(encode_frame(init_message(spec, options)))
            if first is not None:
                frame = encode_frame(first)
                if len(frame) <= QUEUE_LIMIT:
                    ours.sendall(frame)
                else:  # it would not fit in the socket's buffer before the process reads
                    first = None
        except OSError:
            pass  # it died already: the Init's answer will say so
        worker = cls(spec, options, process, output_fd)
        worker._queued_call = first is not None
        try:
            transport, _ = await worker._loop.create_unix_connection(
                lambda: _Link(worker), sock=ours
            )
        except BaseException:
            ours.close()
            await worker.close()
            raise
        worker._transport = transport
        return worker

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def alive(self) -> bool:
        return (
            self._verdict is None
            and self._transport is not None
            and not self._transport.is_closing()
            and not self._process.exited
        )

    async def initialise(self) -> Ready | InitFailed | Exit:
        # ``start`` already queued the Init on the socket, before the process existed.
        outcome = await self._exchange(None, self._options.init_timeout)
        if isinstance(outcome, Ready):
            self.pending_init = outcome
        return outcome  # type: ignore[no-any-return]

    async def call(self, message: Invoke) -> Done | Exit:
        """Run one invocation; ``message`` is not sent again when ``start`` queued it."""
        self.invocations += 1
        if self._queued_call:
            self._queued_call = False
            outcome = await self._exchange(None, self.spec.timeout)
        else:
            self.emitted = []
            outcome = await self._exchange(message, self.spec.timeout)
        self.last_used = self._loop.time()
        return outcome  # type: ignore[no-any-return]

    async def _exchange(self, message: Init | Invoke | None, limit: float) -> Any:
        loop = self._loop
        transport = self._transport
        started_at = time.time()
        started = time.perf_counter()
        if self._inbox:  # answered before we asked (a queued first call)
            return self._inbox.popleft()
        if transport is None or not self.alive:
            return await self._exit(started_at, started)
        waiter: asyncio.Future[Any] = loop.create_future()
        self._waiter = waiter
        if message is not None:
            transport.write(encode_frame(message))
        # One timer per call: it fires at the deadline, or earlier to check memory.
        self._deadline = loop.time() + limit
        self._timer = loop.call_later(min(WATCH_INTERVAL, limit), self._tick, waiter)
        try:
            outcome = await waiter
        finally:
            if self._timer is not None:
                self._timer.cancel()
            self._waiter = None
        if outcome is _LOST:
            return await self._exit(started_at, started)
        return outcome

    def _received(self, message: Any) -> None:
        if isinstance(message, Emitted):
            self.emitted.append(message)
            return
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(message)
        else:
            self._inbox.append(message)

    def _lost(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(_LOST)

    def _tick(self, waiter: asyncio.Future[Any]) -> None:
        if waiter.done():
            return
        now = self._loop.time()
        if now + 0.001 >= self._deadline:
            self._peak_mb = max(self._peak_mb, self._status_mb(b"VmHWM:"))
            self._end(waiter, "timeout")
            return
        used = self._status_mb(b"VmRSS:")
        self._peak_mb = max(self._peak_mb, used)
        if used > self.spec.memory:
            self._end(waiter, "oom")
            return
        self._timer = self._loop.call_at(
            min(now + WATCH_INTERVAL, self._deadline), self._tick, waiter
        )

    def _status_mb(self, field: bytes) -> int:
        kilobytes = _read_status_kb(self._process.pid, field)
        return 0 if kilobytes is None else (kilobytes + 1023) // 1024

    def _end(self, waiter: asyncio.Future[Any], reason: ExitReason) -> None:
        if self._verdict is None:
            self._verdict = reason
        self.kill()
        if not waiter.done():
            waiter.set_result(_LOST)

    def stop_now(self) -> None:
        """Kill the environment; a call in flight ends with reason ``stopped``."""
        waiter = self._waiter
        if waiter is not None:
            self._end(waiter, "stopped")
        else:
            self.kill()

    def kill(self) -> None:
        self._process.kill()

    async def _exit(self, started_at: float, started: float) -> Exit:
        await self._wait_exited()
        elapsed_ms = (time.perf_counter() - started) * 1000
        code = self._process.returncode
        output = "" if self._output_fd is None else read_output(self._output_fd, self._options)
        reason = self._verdict
        if reason is None:
            out_of_memory = code == EXIT_OUT_OF_MEMORY or (
                code == -signal.SIGABRT and HEAP_EXHAUSTED in output
            )
            reason = "oom" if out_of_memory else "crashed"
            self._verdict = reason
        self._close_transport()
        return Exit(reason, code, output, started_at, elapsed_ms, self._peak_mb)

    async def _wait_exited(self) -> None:
        process = self._process
        delay = 0.0005
        deadline = time.monotonic() + EXIT_GRACE
        while not process.finished():
            if time.monotonic() > deadline:
                self.kill()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)

    def _close_transport(self) -> None:
        if self._transport is not None:
            self._transport.close()

    async def close(self) -> None:
        """Kill the process, reap it and release its descriptors (idempotent)."""
        if self._verdict is None:
            self._verdict = "stopped"
        self.kill()
        self._close_transport()
        await self._wait_exited()
        if self._output_fd is not None:
            os.close(self._output_fd)
            self._output_fd = None
