"""The executor's side of fork servers: zygotes and snapshot templates.

A ``ForkServer`` is the control connection to one fork server process (see
``triggerfish.runtime.python.forkserver``): ``spawn()`` asks it for a child and returns
a ``ForkedProcess`` handle, whose ``returncode`` arrives when the server reports the
child's end. ``Zygotes`` keeps one zygote per Python interpreter, started on first use
(or ahead, with ``prepare``) and restarted transparently when it died: a spawn on a
zygote that is gone is retried once on a fresh one.

When a fork server dies its children live on (they talk to the executor on their own
sockets), but nobody reports their exit status any more: their handles then notice
the end through ``/proc`` and report no status.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import socket
import subprocess
import time
from typing import TYPE_CHECKING, Any

import msgspec

from triggerfish.runtime.lifeline import node_lifeline
from triggerfish.runtime.protocol import (
    Confinement,
    Exited,
    FromForkServer,
    Init,
    InitFailed,
    Ready,
    Spawn,
    Spawned,
    SpawnFailed,
    Started,
)
from triggerfish.runtime.python.forkserver import MAX_MESSAGE, ZYGOTE_CODE

if TYPE_CHECKING:
    from triggerfish.runtime.blanks import Blank

DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
#: After a zygote could not be started, plain process starts are used for this long.
RETRY_AFTER = 5.0


class ForkServerGone(ConnectionError):
    """The fork server died before it answered."""


def process_gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (absent, or a zombie nobody reaped yet)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            state = stat.read().rpartition(b")")[2].split()[0]
    except (OSError, IndexError):
        return True
    return state in (b"Z", b"X")


class ForkedProcess:
    """A child of a fork server, with what ``Worker`` needs of a process."""

    __slots__ = ("_server", "exited", "pid", "returncode")

    def __init__(self, server: ForkServer, pid: int) -> None:
        self._server = server
        self.pid = pid
        self.returncode: int | None = None
        self.exited = False

    def finished(self) -> bool:
        if not self.exited and self._server.dead and process_gone(self.pid):
            self.exited = True  # orphaned: the status is lost
        return self.exited

    def kill(self) -> None:
        if self.exited:
            return
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except OSError:
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)


class ForkServer:
    """The control connection to one fork server."""

    def __init__(self, sock: socket.socket, process: Any, *, label: str) -> None:
        self.label = label
        self.process = process  # subprocess.Popen (a zygote) or ForkedProcess (a template)
        self.dead = False
        self.last_used = time.monotonic()
        self._sock = sock
        sock.setblocking(False)
        self._loop = asyncio.get_running_loop()
        self._decoder: msgspec.msgpack.Decoder[Any] = msgspec.msgpack.Decoder(FromForkServer)
        self._refs = itertools.count(1)
        self._pending: dict[int, asyncio.Future[ForkedProcess]] = {}
        self._children: dict[int, ForkedProcess] = {}
        #: Children forked ahead of need (``triggerfish.runtime.blanks``).
        self.blanks: list[Blank] = []
        self.blanks_coming = 0
        self.blank_tasks: set[asyncio.Task[None]] = set()
        self._hello: asyncio.Future[Started | Ready | InitFailed | None] = (
            self._loop.create_future()
        )
        self._loop.add_reader(sock.fileno(), self._readable)

    @property
    def pid(self) -> int:
        return int(self.process.pid)

    @property
    def children(self) -> int:
        return len(self._children)

    async def hello(self, limit: float) -> Started | Ready | InitFailed | None:
        """The server's first message, or None when it died or stayed silent for
        ``limit`` seconds."""
        try:
            return await asyncio.wait_for(asyncio.shield(self._hello), limit)
        except TimeoutError:
            return None

    async def spawn(
        self,
        cwd: str,
        env: dict[str, str],
        fds: list[int],
        *,
        template: Init | None = None,
        confine: Confinement | None = None,
        blank: bool = False,
    ) -> ForkedProcess:
        """Fork a child with ``fds`` (channel, output), confined by ``confine`` when
        given (a ``blank`` waits for a ``Become`` first); raises ``ForkServerGone`` or
        ``OSError``."""
        if self.dead:
            raise ForkServerGone(f"the {self.label} is gone")
        self.last_used = time.monotonic()
        ref = next(self._refs)
        data = msgspec.msgpack.encode(Spawn(ref, cwd, env, template, confine, blank))
        if len(data) > MAX_MESSAGE:
            raise OSError(f"the environment of the function is too large ({len(data)} bytes)")
        answer: asyncio.Future[ForkedProcess] = self._loop.create_future()
        self._pending[ref] = answer
        try:
            await self._send(data, fds)
            return await answer
        finally:
            self._pending.pop(ref, None)

    async def _send(self, data: bytes, fds: list[int]) -> None:
        delay = 0.0005
        while True:
            try:
                socket.send_fds(self._sock, [data], fds)
                return
            except BlockingIOError:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.05)
            except OSError as exc:
                self._died()
                raise ForkServerGone(f"the {self.label} is gone: {exc}") from exc

    def _readable(self) -> None:
        while not self.dead:
            try:
                data = self._sock.recv(MAX_MESSAGE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:
                self._died()
                return
            try:
                message = self._decoder.decode(data)
            except msgspec.DecodeError:
                self.close()
                return
            self._received(message)

    def _received(self, message: Any) -> None:
        if isinstance(message, Exited):
            child = self._children.pop(message.pid, None)
            if child is not None:
                child.returncode = message.returncode
                child.exited = True
        elif isinstance(message, Spawned):
            child = ForkedProcess(self, message.pid)
            self._children[message.pid] = child
            answer = self._pending.get(message.ref)
            if answer is not None and not answer.done():
                answer.set_result(child)
            else:  # nobody waits for it any more
                child.kill()
        elif isinstance(message, SpawnFailed):
            answer = self._pending.get(message.ref)
            if answer is not None and not answer.done():
                answer.set_exception(OSError(message.message))
        elif not self._hello.done():
            self._hello.set_result(message)

    def _died(self) -> None:
        if self.dead:
            return
        self.dead = True
        self._loop.remove_reader(self._sock.fileno())
        self._sock.close()
        if not self._hello.done():
            self._hello.set_result(None)
        for answer in self._pending.values():
            if not answer.done():
                answer.set_exception(ForkServerGone(f"the {self.label} died"))
        self._children.clear()  # their handles now look at /proc (see ``finished``)
        self.process.kill()

    def close(self) -> None:
        """Stop the server (its children live on until their own end, but for its
        blanks, which never served)."""
        for task in self.blank_tasks:
            task.cancel()
        blanks, self.blanks = self.blanks, []
        for blank in blanks:
            blank.close()
        self._died()

    async def wait_closed(self) -> None:
        process = self.process
        deadline = time.monotonic() + 2.0
        while True:
            done = process.poll() is not None if hasattr(process, "poll") else process.finished()
            if done or time.monotonic() > deadline:
                return
            await asyncio.sleep(0.005)


def zygote_environment() -> dict[str, str]:
    return {"PATH": DEFAULT_PATH, "LANG": "C.UTF-8", "TZ": "UTC"}


async def start_zygote(python: str, *, limit: float) -> ForkServer | None:
    """Start a zygote on ``python``; None when it does not come up within ``limit``
    seconds."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        # A blocking fork/exec of a few milliseconds (see ``Worker.spawn``).
        lifeline = node_lifeline()
        process = subprocess.Popen(  # noqa: ASYNC220
            [python, "-c", ZYGOTE_CODE, str(theirs.fileno()), str(lifeline)],
            cwd="/",
            env=zygote_environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            pass_fds=(theirs.fileno(), lifeline),
            start_new_session=True,
        )
    except OSError:
        ours.close()
        return None
    finally:
        theirs.close()
    server = ForkServer(ours, process, label=f"zygote of {python}")
    if not isinstance(await server.hello(limit), Started):
        server.close()
        await server.wait_closed()
        return None
    return server


class Zygotes:
    """One zygote per interpreter, started when first needed and replaced when dead."""

    def __init__(self, *, timeout: float) -> None:
        self._timeout = timeout
        self._servers: dict[str, ForkServer] = {}
        self._starting: dict[str, asyncio.Future[ForkServer | None]] = {}
        self._failed_at: dict[str, float] = {}
        self.restarts = 0

    def pids(self) -> dict[str, int]:
        return {python: server.pid for python, server in self._servers.items() if not server.dead}

    async def get(self, python: str) -> ForkServer | None:
        """The live zygote of ``python``, starting one when needed; None when it cannot
        be started (the caller then starts a fresh interpreter)."""
        server = self._servers.get(python)
        if server is not None and not server.dead:
            return server
        starting = self._starting.get(python)
        if starting is not None:
            return await asyncio.shield(starting)
        failed_at = self._failed_at.get(python)
        if failed_at is not None and time.monotonic() - failed_at < RETRY_AFTER:
            return None
        future: asyncio.Future[ForkServer | None] = asyncio.get_running_loop().create_future()
        self._starting[python] = future
        try:
            new = await start_zygote(python, limit=self._timeout)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: the waiters (if any) see it through shield
            raise
        finally:
            self._starting.pop(python, None)
        if server is not None:
            self.restarts += 1
            await server.wait_closed()
        if new is None:
            self._failed_at[python] = time.monotonic()
            self._servers.pop(python, None)
        else:
            self._failed_at.pop(python, None)
            self._servers[python] = new
        future.set_result(new)
        return new

    async def spawn(
        self,
        python: str,
        cwd: str,
        env: dict[str, str],
        fds: list[int],
        confine: Confinement | None = None,
    ) -> ForkedProcess | None:
        """Fork an environment from the zygote of ``python``, retrying once on a fresh
        zygote when it died; None when no zygote can serve."""
        for _ in range(2):
            server = await self.get(python)
            if server is None:
                return None
            try:
                return await server.spawn(cwd, env, fds, confine=confine)
            except ForkServerGone:
                continue
        return None

    async def close(self) -> None:
        servers = list(self._servers.values())
        self._servers.clear()
        for server in servers:
            server.close()
        await asyncio.gather(*(server.wait_closed() for server in servers))
