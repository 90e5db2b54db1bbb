"""Fork servers: the zygote, and the snapshot templates of ``snapstart`` functions.

The zygote is started as ``python -c ZYGOTE_CODE FD LIFELINE`` (FD: its end of a
SOCK_SEQPACKET control socket; LIFELINE: the read end of the node's lifeline, see
``triggerfish.runtime.lifeline``). It imports the Python runtime once, then forks an execution
environment for every ``Spawn`` it is sent, so that a cold start costs a fork plus the
function's own imports instead of a fresh interpreter. A ``Spawn`` with a ``template``
forks a child that imports the handler, runs its before-snapshot hooks and then serves
forks itself: its children start with the handler already imported.

A fork server promises:

- one ``Spawned`` (with the child's pid) or ``SpawnFailed`` per ``Spawn``, in order;
- one ``Exited`` per child when it ends, with the status as ``subprocess`` reports it;
  children are reaped as soon as they end (no zombies);
- no threads of its own (a fork copies only the calling thread), so the children
  inherit no lock held by a thread that does not exist in them;
- children that share nothing with it but the memory image: each starts a new
  session (its own process group, so killing the group kills what it started),
  gets default signal handlers, stdin from /dev/null, fds 1 and 2 on its own output
  file, its channel on fd 3, the node's lifeline on fd 4 and no other descriptor,
  the function's working directory and environment variables, and a fresh seed for
  ``random`` (Python reseeds it in every fork);
- it exits when its control socket closes (its owner is gone); its children live on
  until their node is gone.

The memory limit (``RLIMIT_DATA``) is applied by the child itself once it knows it,
never in the fork server, which stays unlimited.
"""

from __future__ import annotations

import atexit
import gc
import os
import select
import signal
import socket
import sys
import time
import traceback
from typing import Any

import msgspec

from triggerfish.runtime.lifeline import LIFELINE_FD, relocate, watch
from triggerfish.runtime.protocol import (
    EXIT_OUT_OF_MEMORY,
    Become,
    Confinement,
    Exited,
    FromForkServer,
    InitFailed,
    Ready,
    Spawn,
    Spawned,
    SpawnFailed,
    Started,
)
from triggerfish.runtime.python import bootstrap
from triggerfish.runtime.python.capture import OutputCapture
from triggerfish.runtime.sandbox import confine

#: How the executor starts a zygote; the control socket's fd is the one argument.
ZYGOTE_CODE = "from triggerfish.runtime.python.forkserver import main; main()"
#: Where a child finds its channel (the protocol socket, or a template's control socket).
CHANNEL_FD = 3
MAX_MESSAGE = 1024 * 1024
MAX_FDS = 2

_encoder = msgspec.msgpack.Encoder()


class ForkServer:
    def __init__(
        self, control: socket.socket, preloaded: bootstrap.Preloaded | None, lifeline: int
    ) -> None:
        self._control = control
        self._preloaded = preloaded
        self._lifeline = lifeline
        self._decoder = msgspec.msgpack.Decoder(Spawn)
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def send(self, message: FromForkServer) -> None:
        self._control.send(_encoder.encode(message))

    def serve(self) -> None:
        """Fork on request until the control socket closes; then exit."""
        signal.set_wakeup_fd(self._wake_w)
        signal.signal(signal.SIGCHLD, _ignore)
        # Ctrl-C in a terminal reaches the server's whole session: the executor decides.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        poller = select.poll()
        poller.register(self._control.fileno(), select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        while True:
            for fd, _ in poller.poll():
                if fd == self._wake_r:
                    while True:
                        try:
                            if not os.read(self._wake_r, 512):
                                break
                        except BlockingIOError:
                            break
                    self._reap()
                    continue
                try:
                    data, fds, _, _ = socket.recv_fds(self._control, MAX_MESSAGE, MAX_FDS)
                except ConnectionResetError:  # closed with a request unread: the same
                    data, fds = b"", []
                if not data:
                    for extra in fds:
                        os.close(extra)
                    os._exit(0)
                self._spawn(self._decoder.decode(data), fds)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.send(Exited(pid, os.waitstatus_to_exitcode(status)))

    def _spawn(self, request: Spawn, fds: list[int]) -> None:
        if len(fds) != 2:
            for fd in fds:
                os.close(fd)
            self.send(SpawnFailed(request.ref, "a spawn needs two descriptors"))
            return
        forked_at = time.perf_counter()
        try:
            pid = os.fork()
        except OSError as exc:
            for fd in fds:
                os.close(fd)
            self.send(SpawnFailed(request.ref, f"fork failed: {exc}"))
            return
        if pid == 0:
            code = 1
            try:
                self._become_child(request, fds)
                if request.template is not None:
                    code = _serve_template(request)
                elif request.blank:
                    watch(LIFELINE_FD)
                    code = self._serve_blank()
                else:
                    watch(LIFELINE_FD)
                    bootstrap.serve(CHANNEL_FD, preloaded=self._preloaded, forked_at=forked_at)
                    code = 0
            except MemoryError:
                code = EXIT_OUT_OF_MEMORY
            except BaseException:
                traceback.print_exc()
            finally:
                _exit(code)
        for fd in fds:
            os.close(fd)
        self.send(Spawned(request.ref, pid))

    def _become_child(self, request: Spawn, fds: list[int]) -> None:
        channel_fd, output_fd = fds
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        # The socket object must not close "its" fd later: that number will be reused.
        self._control.detach()
        os.setsid()
        os.dup2(output_fd, 1)
        os.dup2(output_fd, 2)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        lifeline = relocate(self._lifeline)
        os.dup2(channel_fd, CHANNEL_FD, inheritable=False)
        os.dup2(lifeline, LIFELINE_FD, inheritable=False)
        os.closerange(LIFELINE_FD + 1, _max_fd())
        os.chdir(request.cwd)
        os.environ.clear()
        os.environ.update(request.env)
        # The zygote resolved "" (the working directory) on sys.path at its own cwd.
        sys.path_importer_cache.pop("", None)
        sys.argv[1:] = [str(CHANNEL_FD)]
        if request.blank and request.confine is not None:
            # Users come with the ``Become``: join the cgroups only, ahead of need.
            confine(Confinement(os.getuid(), os.getgid(), request.confine.procs))
        elif request.confine is not None:
            confine(request.confine)

    def _serve_blank(self) -> int:
        """Wait for the ``Become`` that gives this environment its function, then serve
        it as a child forked for it would."""
        channel = bootstrap.Channel(CHANNEL_FD)
        become = channel.receive()
        if not isinstance(become, Become):
            return 0  # closed unused (or a confused executor)
        forked_at = time.perf_counter()  # its init counts from here, not from the fork
        os.chdir(become.cwd)
        os.environ.clear()
        os.environ.update(become.env)
        sys.path_importer_cache.pop("", None)
        if become.uid is not None and become.gid is not None:
            confine(Confinement(become.uid, become.gid, [], become.read, become.write))
        elif become.read or become.write:
            confine(Confinement(os.getuid(), os.getgid(), [], become.read, become.write))
        bootstrap.serve(CHANNEL_FD, preloaded=self._preloaded, forked_at=forked_at, channel=channel)
        return 0


def _serve_template(request: Spawn) -> int:
    """In a template: import the handler, run the before-snapshot hooks, report, and
    serve forks of this image."""
    init = request.template
    assert init is not None
    control = socket.socket(fileno=CHANNEL_FD)
    started = time.perf_counter()
    capture = OutputCapture(init.log_limit)
    bootstrap.limit_memory(init.memory_mb)
    loaded = bootstrap.load(init)
    failure = loaded if isinstance(loaded, InitFailed) else bootstrap.snapshot()
    elapsed = (time.perf_counter() - started) * 1000
    server_message: Ready | InitFailed
    if failure is not None:
        failure.init_duration_ms = elapsed
        failure.logs = capture.drain()
        server_message = failure
    else:
        threads = _thread_count()
        if threads > 1:
            sys.stderr.write(
                f"[WARNING] {threads} threads run at snapshot time; environments forked"
                " from the snapshot have only one. Start threads in an after-restore hook.\n"
            )
        server_message = Ready(elapsed, capture.drain())
    server = ForkServer(control, None, LIFELINE_FD)
    server.send(server_message)
    if failure is not None or isinstance(loaded, InitFailed):
        return 0
    server._preloaded = bootstrap.Preloaded(loaded, capture)
    gc.collect()
    gc.freeze()  # keep the collector from writing to (and so copying) shared pages
    server.serve()
    return 0


def _thread_count() -> int:
    threading = sys.modules.get("threading")
    return 1 if threading is None else int(threading.active_count())


def _ignore(signum: int, frame: Any) -> None:
    """SIGCHLD only has to wake the poll (through the wakeup fd)."""


def _max_fd() -> int:
    try:
        return int(os.sysconf("SC_OPEN_MAX"))
    except (OSError, ValueError):
        return 65536


def _exit(code: int) -> None:
    """End a child the way an interpreter ends: exit hooks, flushed output."""
    try:
        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except BaseException:
        pass  # nothing can be reported any more
    os._exit(code)


def _warm_up() -> None:
    """What every environment would import anyway, imported once here."""
    import asyncio  # noqa: F401 - async handlers start without paying for it
    import json  # noqa: F401
    import logging  # noqa: F401

    import orjson  # noqa: F401


def main() -> None:
    control = socket.socket(fileno=int(sys.argv[1]))
    os.set_inheritable(control.fileno(), False)
    lifeline = int(sys.argv[2])
    os.set_inheritable(lifeline, False)
    os.chdir("/")
    _warm_up()
    gc.collect()
    gc.freeze()
    server = ForkServer(control, None, lifeline)
    server.send(Started(os.getpid()))
    server.serve()
