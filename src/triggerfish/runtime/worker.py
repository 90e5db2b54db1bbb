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
- memory: while calls are in flight the process's RSS is read from ``/proc`` every
  ``WATCH_INTERVAL``, and a process over its memory size is killed with reason ``oom``
  (the data rlimit inside the environment catches most cases first);
- death: when the socket closes the process is reaped and the call ends with reason
  ``crashed`` and its exit status or signal.

Calls may be pipelined: ``submit`` may send the next invocation while the current
one still runs (``queued`` says how many wait behind it). The environment reads
frames in order and runs one invocation at a time, so answers come back in the order
of the calls; a queued call's timeout starts when the one before it is answered,
which is when the environment starts it. When the environment dies or is killed, the
call it was running ends with the ``Exit``; the calls queued behind it never started
and end with ``NOT_STARTED``, so the executor runs them elsewhere.

A queued call may carry a start-by time (``Invoke.start_by``, on the monotonic clock
that all processes share). The environment skips a call it reaches later, and says so
(``Skipped``). Once that time has passed, the worker takes the call back
(``NOT_STARTED``) if the environment cannot have started it: the answer to the call
ahead has not arrived and no byte waits unread on the socket. The environment reads
the clock only after it has written that answer, so it will reach the call late and
skip it; that ``Skipped`` is then dropped. So a call waits behind a slow one only until
its start-by, and runs once or not at all.

One timer per worker, not per call, watches the running call's deadline and memory.
A call never hangs: every wait is under that timer, and a process that closed its
socket but does not exit is killed after ``EXIT_GRACE`` seconds.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import socket
import sys
import termios
import time
from collections import deque
from collections.abc import Callable
from itertools import islice
from typing import TYPE_CHECKING, Any, NamedTuple

from triggerfish.runtime import blanks
from triggerfish.runtime.base import FunctionSpec, runtime_family
from triggerfish.runtime.environment import (
    Exit,
    ExitReason,
    ProcessHandle,
    SpawnedProcess,
    WorkerOptions,
    environment_variables,
    init_message,
    output_file,
    read_output,
    read_status_kb,
    scratch_directory,
    spawn_interpreter,
)
from triggerfish.runtime.node.launcher import NodeLauncher
from triggerfish.runtime.protocol import (
    BOOT_CODE,
    EXIT_OUT_OF_MEMORY,
    Become,
    Done,
    Emitted,
    FrameReader,
    FromEnvironment,
    InitFailed,
    Invoke,
    ProtocolError,
    Ready,
    Skipped,
    append_frame,
    encode_frame,
)
from triggerfish.runtime.provided.relay import RELAY_CODE
from triggerfish.runtime.zygote import ForkServer, Zygotes

if TYPE_CHECKING:
    from triggerfish.runtime.sandbox import Cell

WATCH_INTERVAL = 0.1
#: A first call larger than this is sent once the environment runs, not queued ahead.
QUEUE_LIMIT = 64 * 1024
EXIT_GRACE = 1.0
#: What V8 prints before it aborts the process at its heap limit.
HEAP_EXHAUSTED = "JavaScript heap out of memory"


class _Lost:
    """Marker result: the socket closed (or the timer fired) before an answer came."""


_LOST = _Lost()


class NotStarted:
    """A pipelined call that the environment never started: it died (or was killed)
    while running the call ahead of it, or the call was taken back at its start-by.
    Safe to run again elsewhere."""


NOT_STARTED = NotStarted()


class Call:
    """One request in flight on a worker, answered in order."""

    __slots__ = (
        "deadline",
        "emitted",
        "future",
        "handed_over",
        "limit",
        "skips_behind",
        "start_by",
        "started",
        "started_at",
        "worker",
    )

    def __init__(self, worker: Worker, future: asyncio.Future[Any], limit: float) -> None:
        self.worker = worker
        self.future = future
        self.limit = limit
        self.emitted: list[Emitted] = []
        self.started_at = 0.0  # wall clock, when the environment began it
        self.started = 0.0  # perf_counter, same moment (0.0: not begun)
        self.deadline = 0.0  # loop time
        #: Answered while other calls were still in flight on the worker: the next one
        #: began at once, and carries on the concurrency slot this one held.
        self.handed_over = False
        self.start_by = 0.0  # monotonic clock; 0.0: none (see ``Invoke.start_by``)
        #: Calls taken back from right behind this one: the environment answers each
        #: ``Skipped`` right after this one's answer.
        self.skips_behind = 0


class Answer(NamedTuple):
    #: ``Skipped``: the environment reached the call after its start-by (it held the
    #: slot passed on by the call ahead, as a ``Done`` does).
    outcome: Done | Skipped | Exit | NotStarted
    emitted: list[Emitted]
    handed_over: bool


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
        self._verdict: ExitReason | None = None
        # Calls in flight, the running one first. One timer watches the running call.
        self._calls: deque[Call] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._peak_mb = 0
        self.last_used = self._loop.time()
        #: Init duration and init output, until the first call reports them.
        self.pending_init: Ready | None = None
        self.invocations = 0
        self._init_call: Call | None = None
        self._unsent = bytearray()
        self._first_call: Call | None = None
        self._owed_skips = 0  # ``Skipped`` answers due for calls taken back
        #: Seconds the last answered call ran (from its start to its answer).
        self.last_duration = 0.0
        #: Called with each answer, before its caller sees it: the executor may hand
        #: the environment its next invocation without waiting for that caller.
        self.on_answer: Callable[[Worker, Any], None] | None = None
        #: Memory budget (MB) this environment holds; the executor releases it.
        self.reserved_mb = 0
        #: The sandbox's cgroups and user of this environment, where it has them.
        self._cell: Cell | None = None

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
        started = await _from_blank(spec, options, env, scratch_dir, family, template, zygotes)
        if started is not None:
            spec, cell, process, ours, output_fd = started
        else:
            spec, cell, process, ours, output_fd = await _launch(
                spec, options, env, scratch_dir, family, template, zygotes, node
            )
        # The Init (and the first call) wait in the socket, so the environment reads
        # them as soon as it runs: no round trip between starting and running.
        try:
            ours.sendall(encode_frame(init_message(spec, options)))
            if first is not None:
                first.start_by = None
                frame = encode_frame(first)
                if len(frame) <= QUEUE_LIMIT:
                    ours.sendall(frame)
                else:  # it would not fit in the socket's buffer before the process reads
                    first = None
        except OSError:
            pass  # it died already: the Init's answer will say so
        worker = cls(spec, options, process, output_fd)
        worker._cell = cell
        worker._init_call = worker._enqueue(options.init_timeout)
        if first is not None:
            worker._first_call = worker._enqueue(spec.timeout)
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

    @property
    def queued(self) -> int:
        """Calls waiting behind the running one."""
        return max(0, len(self._calls) - 1)

    async def initialise(self) -> Ready | InitFailed | Exit:
        # ``start`` already queued the Init on the socket, before the process existed.
        call, self._init_call = self._init_call, None
        assert call is not None, "initialise() is called once, after start()"
        outcome = await self._wait(call)
        if isinstance(outcome, Ready):
            self.pending_init = outcome
        elif isinstance(outcome, NotStarted):  # cannot happen: the Init runs first
            outcome = await self._exit(call)
        return outcome  # type: ignore[no-any-return]

    @property
    def in_flight(self) -> int:
        """Calls sent and not answered: the running one and those queued behind it."""
        return len(self._calls)

    def submit(self, message: Invoke, *, send: bool = True, start_by: float | None = None) -> Call:
        """Send one invocation, now, even while another runs (it then waits in the
        environment, until ``start_by`` at most: see the module's docstring). Its answer
        comes from ``result``. ``message`` is not sent again when ``start`` queued it.
        ``send=False`` keeps the frame until ``send()``, so that several invocations
        leave in one write."""
        self.invocations += 1
        call, self._first_call = self._first_call, None
        if call is not None:
            return call
        transport = self._transport
        if transport is None or not self.alive:
            call = Call(self, self._loop.create_future(), self.spec.timeout)
            self._begin(call)
            call.future.set_result(_LOST)
            return call
        call = self._enqueue(self.spec.timeout)
        message.start_by = start_by
        append_frame(self._unsent, message)
        if start_by is not None:
            call.start_by = start_by
            self._arm(self._loop.time() + (start_by - time.monotonic()))
        if send:
            self.send()
        return call

    def send(self) -> None:
        """Write the frames ``submit`` kept, in one system call."""
        if self._unsent:
            frames, self._unsent = self._unsent, bytearray()
            if self._transport is not None and not self._transport.is_closing():
                self._transport.write(frames)

    async def result(self, call: Call) -> Answer:
        outcome = await self._wait(call)
        self.last_used = self._loop.time()
        return Answer(outcome, call.emitted, call.handed_over)

    async def call(self, message: Invoke) -> Answer:
        """Run one invocation: ``submit`` then ``result``."""
        return await self.result(self.submit(message))

    async def _wait(self, call: Call) -> Any:
        outcome = await call.future
        if outcome is _LOST:
            return await self._exit(call)
        return outcome

    def _enqueue(self, limit: float) -> Call:
        call = Call(self, self._loop.create_future(), limit)
        self._calls.append(call)
        if len(self._calls) == 1:
            self._begin(call)
        return call

    def _begin(self, call: Call) -> None:
        """The environment starts ``call`` now: its clock and deadline run from here."""
        call.started_at = time.time()
        call.started = time.perf_counter()
        now = self._loop.time()
        call.deadline = now + call.limit
        self._arm(min(now + WATCH_INTERVAL, call.deadline))

    def _arm(self, when: float) -> None:
        # The timer is left to fire after a call ends (it then finds nothing to watch)
        # rather than cancelled and made again for every call.
        if self._timer is not None:
            if self._timer_at <= when:
                return
            self._timer.cancel()
        self._timer_at = when
        self._timer = self._loop.call_at(when, self._tick)

    def _received(self, message: Any) -> None:
        if self._owed_skips and isinstance(message, Skipped):
            self._owed_skips -= 1  # a call taken back: its caller has moved on
            return
        calls = self._calls
        if not calls:
            return  # nothing asked: a confused environment; its next call will tell
        if isinstance(message, Emitted):
            calls[0].emitted.append(message)
            return
        call = calls.popleft()
        if call.skips_behind:
            self._owed_skips += call.skips_behind
        if isinstance(message, Skipped):
            self.invocations -= 1  # it did not run; the last duration stays as it was
        else:
            self.last_duration = time.perf_counter() - call.started
        if isinstance(message, InitFailed) or (
            isinstance(message, Done) and message.status in ("oom", "crashed")
        ):
            # The environment exits after this answer: what waits behind never starts.
            self._settle(NOT_STARTED)
        elif calls:
            self._begin(calls[0])
        if self.on_answer is not None and isinstance(message, (Done, Skipped)):
            self.on_answer(self, message)
        call.handed_over = bool(self._calls)
        if not call.future.done():
            call.future.set_result(message)

    def _lost(self) -> None:
        self._settle(_LOST)

    def _settle(self, outcome: _Lost | NotStarted) -> None:
        """The environment is gone: the running call gets ``outcome``, the rest were
        never started."""
        calls, self._calls = self._calls, deque()
        self._owed_skips = 0
        for index, call in enumerate(calls):
            if not call.future.done():
                call.future.set_result(outcome if index == 0 else NOT_STARTED)

    def _tick(self) -> None:
        self._timer = None
        if not self._calls:
            return
        call = self._calls[0]
        now = self._loop.time()
        if now + 0.001 >= call.deadline:
            self._peak_mb = max(self._peak_mb, self._status_mb(b"VmHWM:"))
            self._end("timeout")
            return
        used = self._status_mb(b"VmRSS:")
        self._peak_mb = max(self._peak_mb, used)
        if used > self.spec.memory:
            self._end("oom")
            return
        wake = min(now + WATCH_INTERVAL, call.deadline)
        if len(self._calls) > 1:
            start_by = self._take_back_late()
            if start_by is not None:
                wake = min(wake, now + max(0.001, start_by - time.monotonic()))
        self._arm(wake)

    def _take_back_late(self) -> float | None:
        """Take back the queued calls whose start-by has passed, when the environment
        cannot have started them (see the module's docstring); they end with
        ``NOT_STARTED``. Returns the next start-by to watch, if any."""
        calls = self._calls
        clock = time.monotonic()
        late = [index for index in range(1, len(calls)) if 0.0 < calls[index].start_by <= clock]
        if late:
            if self._unread():
                return clock  # the answer ahead may be in it: look again once it is read
            for index in reversed(late):
                call = calls[index]
                del calls[index]
                calls[index - 1].skips_behind += 1 + call.skips_behind
                self.invocations -= 1
                if not call.future.done():
                    call.future.set_result(NOT_STARTED)
        queued = islice(calls, 1, None)
        return min((call.start_by for call in queued if call.start_by), default=None)

    def _unread(self) -> bool:
        """Whether bytes from the environment wait in the socket, not yet read."""
        transport = self._transport
        if transport is None or transport.is_closing():
            return False
        fd = transport.get_extra_info("socket").fileno()
        count = bytearray(4)
        fcntl.ioctl(fd, termios.FIONREAD, count)
        return int.from_bytes(count, sys.byteorder) > 0

    def _status_mb(self, field: bytes) -> int:
        kilobytes = read_status_kb(self._process.pid, field)
        return 0 if kilobytes is None else (kilobytes + 1023) // 1024

    def _end(self, reason: ExitReason) -> None:
        if self._verdict is None:
            self._verdict = reason
        self.kill()
        self._settle(_LOST)

    def stop_now(self) -> None:
        """Kill the environment; a call in flight ends with reason ``stopped``."""
        if self._calls:
            self._end("stopped")
        else:
            self.kill()

    def kill(self) -> None:
        self._process.kill()
        if self._cell is not None:
            self._cell.kill()  # what the handler started, whatever session it made

    async def _exit(self, call: Call) -> Exit:
        await self._wait_exited()
        started_at = call.started_at
        elapsed_ms = (time.perf_counter() - call.started) * 1000
        code = self._process.returncode
        output = "" if self._output_fd is None else read_output(self._output_fd, self._options)
        reason = self._verdict
        if reason is None:
            out_of_memory = code == EXIT_OUT_OF_MEMORY or (
                code == -signal.SIGABRT and HEAP_EXHAUSTED in output
            )
            if self._cell is not None and self._cell.took_oom_kill():
                out_of_memory = True
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
        cell, self._cell = self._cell, None
        if cell is not None:
            await cell.discard()


Launched = tuple[FunctionSpec, "Cell | None", ProcessHandle, socket.socket, int]


async def _from_blank(
    spec: FunctionSpec,
    options: WorkerOptions,
    env: dict[str, str],
    scratch_dir: str,
    family: str,
    template: ForkServer | None,
    zygotes: Zygotes | None,
) -> Launched | None:
    """A Python environment started from a blank of its fork server, where the sandbox
    confines environments and one is ready (``triggerfish.runtime.blanks``)."""
    sandbox = options.sandbox
    if family != "python" or sandbox is None or not sandbox.confines:
        return None
    if template is not None:
        server: ForkServer | None = template
        # A snapshot runs as its function's user already: its blanks join as that user.
        uid = sandbox.identity(spec.function) if sandbox.uses_users else os.getuid()
    else:
        server = None if zygotes is None else await zygotes.get(spec.python or options.python)
        uid = os.getuid()
    if server is None:
        return None
    blank = blanks.take(server, sandbox, uid, scratch_dir)
    if blank is None:
        return None
    try:
        cell = sandbox.fit(blank.cell, spec.function, spec.memory, spec.code_dir)
        spec, env = cell.runs(spec, env)
        fence = cell.confinement if template is None else None  # a template is fenced
        user = fence.uid if fence is not None and sandbox.uses_users else None
        read, write = ([], []) if fence is None else (fence.read, fence.write)
        become = Become(str(spec.code_dir), env, user, user, read, write)
        blank.sock.sendall(encode_frame(become))
    except BaseException:
        blank.close()
        raise
    return spec, cell, blank.process, blank.sock, blank.output_fd


async def _launch(
    spec: FunctionSpec,
    options: WorkerOptions,
    env: dict[str, str],
    scratch_dir: str,
    family: str,
    template: ForkServer | None,
    zygotes: Zygotes | None,
    node: NodeLauncher | None,
) -> Launched:
    """Start the environment's process into a cell of its own (where the sandbox
    confines environments): forked from ``template`` or the zygote, launched by
    ``node``, or a fresh interpreter."""
    cell = None
    if options.sandbox is not None:
        cell = options.sandbox.cell(spec.function, spec.memory, spec.code_dir)
        if cell is not None:
            spec, env = cell.runs(spec, env)
    confinement = None if cell is None else cell.confinement
    process: ProcessHandle | None = None
    try:
        if family == "nodejs":
            if node is None:
                raise OSError(f"runtime {spec.runtime}: Node.js environments are not enabled")
            launched = node.launch(spec, env, cell)
            return spec, cell, SpawnedProcess(launched.popen), launched.sock, launched.output_fd
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        output_fd = output_file(f"triggerfish-{spec.function}", scratch_dir)
        python = spec.python or options.python
        try:
            fds = [theirs.fileno(), output_fd]
            code = str(spec.code_dir)
            if family != "python":
                pass  # zygotes and snapshots hold the Python runtime only
            elif template is not None:
                process = await template.spawn(code, env, fds, confine=confinement)
            elif zygotes is not None:
                process = await zygotes.spawn(python, code, env, fds, confinement)
            if process is None:
                boot = RELAY_CODE if family == "provided" else BOOT_CODE
                process = spawn_interpreter(python, spec, env, theirs, output_fd, boot, cell)
        except BaseException:
            ours.close()
            os.close(output_fd)
            raise
        finally:
            theirs.close()
        return spec, cell, process, ours, output_fd
    except BaseException:
        if cell is not None:
            cell.remove()
        raise
