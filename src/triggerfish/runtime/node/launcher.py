"""Starting Node.js environments, and keeping a pre-started one ready per Node.js.

A Node.js environment is ``node --max-old-space-size=N bootstrap.js FD`` (see
``bootstrap.js`` beside this module). Node's own start-up costs tens of milliseconds
before the bootstrap reads anything, so ``NodeLauncher`` keeps one *spare* per
(executable, memory size) in use: a process already started with its protocol socket
and its output file, blocked on its first read. A new environment takes the spare,
sends it a ``Setup`` frame (working directory and exact variables) then its ``Init``,
and a new spare is started in the background for the next one. The heap limit is a
start-up flag (V8 ignores it later), hence one spare per memory size.

A spare cannot take on what only exists at process start: a function whose variables
set ``NODE_OPTIONS`` always gets a fresh process. Spares unused for ``spare_ttl``
seconds are stopped by ``reap``; ``close`` stops them all.

Runtimes: ``nodejs`` is whatever ``node`` is on the server's ``PATH``; ``nodejsNN.x``
is ``nodeNN`` when such a program exists, else ``node`` when its major version is NN,
else the start fails with a message saying what is installed.

Packages: once the node's AWS SDK v3 bundle is installed (``sdk.py``), every
environment gets its ``node_modules`` last in ``NODE_PATH``, whether it starts fresh or
from a spare (whose ``Setup`` carries the variables).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from triggerfish.runtime.base import FunctionSpec
from triggerfish.runtime.environment import start_child
from triggerfish.runtime.lifeline import die_with_parent_argv
from triggerfish.runtime.node.sdk import installed_modules, node_path
from triggerfish.runtime.protocol import encode_frame

if TYPE_CHECKING:
    from triggerfish.runtime.sandbox import Cell

BOOTSTRAP = Path(__file__).with_name("bootstrap.js")
#: V8's old space gets this share of the memory size; the rest is code, young space and
#: buffers. Beyond the memory size, the executor's watch of resident memory ends it.
HEAP_SHARE = 0.85
MIN_HEAP_MB = 32
SPARE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "TZ": "UTC"}

_VERSIONED = re.compile(r"^nodejs(\d+)\.x$")


#: A spare's kind: the Node.js executable, the memory size, the user it runs as.
SpareKey = tuple[str, int, int | None]


class Setup(msgspec.Struct, tag="n", tag_field="k", array_like=True):
    """First frame to a spare: where to run and with which variables."""

    cwd: str
    env: dict[str, str]


class RuntimeNotInstalledError(FileNotFoundError):
    """The Node.js that a runtime name asks for is not on this machine."""


@dataclass(slots=True)
class Launched:
    """A started Node.js process: the popen, the executor's end of its protocol socket,
    and its output file (fd 1 and 2 of the process)."""

    popen: subprocess.Popen[bytes]
    sock: socket.socket
    output_fd: int
    spare: bool = False
    created: float = field(default_factory=time.monotonic)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.killpg(self.popen.pid, 9)
        self.sock.close()
        os.close(self.output_fd)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(1.0)


def heap_mb(memory_mb: int) -> int:
    return max(MIN_HEAP_MB, int(memory_mb * HEAP_SHARE))


def command(executable: str, memory_mb: int, fd: int) -> list[str]:
    return die_with_parent_argv(
        [executable, f"--max-old-space-size={heap_mb(memory_mb)}", str(BOOTSTRAP), str(fd)]
    )


def node_major(executable: str) -> int | None:
    try:
        result = subprocess.run(
            [executable, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.match(r"v(\d+)\.", result.stdout.strip())
    return int(match.group(1)) if match else None


class NodeLauncher:
    """Finds the Node.js of each runtime name and starts environments, from a spare
    when one is ready."""

    def __init__(
        self,
        *,
        spares: bool = True,
        spare_ttl: float = 300.0,
        identity: Callable[[str], int | None] | None = None,
        sdk: Path | None = None,
    ) -> None:
        """``identity``: the user a function's processes run as (the sandbox's), None
        for the node's own. ``sdk``: the folder of the AWS SDK bundle, used once an
        install is complete there."""
        self._sdk = sdk
        self._use_spares = spares
        self._spare_ttl = spare_ttl
        self._identity: Callable[[str], int | None] = identity or (lambda function: None)
        self._spares: dict[SpareKey, Launched] = {}
        self._last_used: dict[SpareKey, float] = {}
        self._executables: dict[str, str] = {}
        self._closed = False

    def executable(self, runtime: str) -> str:
        """The program for ``runtime``; ``RuntimeNotInstalledError`` when there is none."""
        found = self._executables.get(runtime)
        if found is not None:
            return found
        node = shutil.which("node")
        match = _VERSIONED.match(runtime)
        if match is None:
            if node is None:
                raise RuntimeNotInstalledError(
                    f"runtime {runtime}: Node.js is not installed on this node (no 'node' on PATH)"
                )
            found = node
        else:
            major = int(match.group(1))
            found = shutil.which(f"node{major}") or ""
            if not found:
                installed = None if node is None else node_major(node)
                if installed != major:
                    what = "no 'node'" if node is None else f"{node} is Node.js {installed}"
                    raise RuntimeNotInstalledError(
                        f"runtime {runtime} needs Node.js {major}, but {what} and there is no "
                        f"'node{major}' on PATH; install it, or use runtime: nodejs"
                    )
                assert node is not None
                found = node
        self._executables[runtime] = found
        return found

    def launch(self, spec: FunctionSpec, env: dict[str, str], cell: Cell | None = None) -> Launched:
        """A process for ``spec``, running in its code folder with exactly ``env``: a
        spare (already sent its ``Setup``) when one is ready, else a fresh one; as the
        user of ``cell`` and in it, when given (spares are kept per user)."""
        executable = self.executable(spec.runtime)
        env = node_path(env, installed_modules(self._sdk))
        uid = None if cell is None else cell.confinement.uid
        key = (executable, spec.memory, uid)
        spare = None
        if self._use_spares and "NODE_OPTIONS" not in env:
            self._last_used[key] = time.monotonic()
            spare = self._spares.pop(key, None)
            if spare is not None and spare.popen.poll() is not None:
                spare.close()
                spare = None
            with contextlib.suppress(RuntimeError):  # no loop: no refill
                asyncio.get_running_loop().call_soon(self._refill, key)
        if spare is not None:
            if cell is not None:
                try:
                    cell.adopt(spare.popen.pid)
                except OSError:
                    spare.close()
                    raise
            spare.sock.sendall(encode_frame(Setup(str(spec.code_dir), env)))
            return spare
        return self._start(executable, spec.memory, env, str(spec.code_dir), cell=cell)

    def prepare(self, spec: FunctionSpec) -> None:
        """Have a spare ready for ``spec``'s runtime and memory size (when a version of
        it goes live), so that even its first environment skips Node's start-up."""
        if not self._use_spares or "NODE_OPTIONS" in spec.environment or self._closed:
            return
        try:
            key = (self.executable(spec.runtime), spec.memory, self._identity(spec.function))
        except OSError:
            return
        self._last_used[key] = time.monotonic()
        self._refill(key)

    def _refill(self, key: SpareKey) -> None:
        if self._closed or key in self._spares:
            return
        executable, memory, uid = key
        try:
            spare = self._start(executable, memory, dict(SPARE_ENV), "/", uid=uid)
        except OSError:
            return
        spare.spare = True
        self._spares[key] = spare

    def _start(
        self,
        executable: str,
        memory: int,
        env: dict[str, str],
        cwd: str,
        *,
        cell: Cell | None = None,
        uid: int | None = None,
    ) -> Launched:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        output_fd = _output_file()
        try:
            argv = command(executable, memory, theirs.fileno())
            popen = start_child(argv, cwd, env, theirs, output_fd, cell=cell, uid=uid)
        except BaseException:
            ours.close()
            os.close(output_fd)
            raise
        finally:
            theirs.close()
        return Launched(popen, ours, output_fd)

    def reap(self) -> int:
        """Stop spares whose runtime and memory size went unused for ``spare_ttl``."""
        now = time.monotonic()
        stopped = 0
        for key, spare in list(self._spares.items()):
            if now - self._last_used.get(key, spare.created) >= self._spare_ttl:
                del self._spares[key]
                self._last_used.pop(key, None)
                spare.close()
                stopped += 1
        return stopped

    def spare_pids(self) -> list[int]:
        return [spare.popen.pid for spare in self._spares.values()]

    def close(self) -> None:
        self._closed = True
        spares, self._spares = self._spares, {}
        for spare in spares.values():
            spare.close()


def _output_file() -> int:
    fd = os.memfd_create("triggerfish-node", os.MFD_CLOEXEC)
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_APPEND)
    return fd
