"""What an execution environment's process starts with, and how it is watched from
outside: the options, a clean set of environment variables, its scratch directory and
output file, the handle of its process, and how it ended (``Exit``)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from triggerfish.runtime.base import OPT_DIR, FunctionSpec, runtime_family
from triggerfish.runtime.lifeline import node_lifeline
from triggerfish.runtime.protocol import BOOT_CODE, Init, describe_exit
from triggerfish.runtime.report import cap_output
from triggerfish.runtime.sandbox import fenced_argv

if TYPE_CHECKING:
    from triggerfish.runtime.sandbox import Cell, Sandbox

DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"

ExitReason = Literal["timeout", "oom", "crashed", "stopped"]


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    python: str
    log_limit: int
    work_dir: Path | None
    init_timeout: float
    sandbox: Sandbox | None = None


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


def environment_variables(
    spec: FunctionSpec, scratch: str, init_type: str = "on-demand"
) -> dict[str, str]:
    """A clean environment: the function's variables, then Lambda's (which win)."""
    env: dict[str, str] = {"PATH": DEFAULT_PATH, "LANG": "C.UTF-8", "TZ": "UTC"}
    env.update(spec.environment)
    env.update(
        {
            "AWS_LAMBDA_FUNCTION_NAME": spec.function,
            "AWS_LAMBDA_FUNCTION_VERSION": spec.lambda_version,
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
    opt = spec.code_dir / OPT_DIR
    if opt.is_dir():
        layer_variables(env, str(opt), runtime_family(spec.runtime))
    return env


def layer_variables(env: dict[str, str], opt: str, family: str) -> None:
    """Where a function's layers are, as Lambda has them under ``/opt``: the folder
    itself (``TRIGGERFISH_OPT``), ``bin`` last on ``PATH``, ``lib`` on
    ``LD_LIBRARY_PATH``, and for Node.js ``nodejs/node_modules`` on ``NODE_PATH``
    (after the function's own ``NODE_PATH``). Python finds ``python`` and
    ``python/lib/python3.X/site-packages`` itself (``python.loader``)."""
    env["TRIGGERFISH_OPT"] = opt
    env["PATH"] = _joined(env.get("PATH"), f"{opt}/bin")
    env["LD_LIBRARY_PATH"] = _joined(env.get("LD_LIBRARY_PATH"), f"{opt}/lib")
    if family == "nodejs":
        env["NODE_PATH"] = _joined(env.get("NODE_PATH"), f"{opt}/nodejs/node_modules")


def _joined(first: str | None, last: str) -> str:
    return f"{first}{os.pathsep}{last}" if first else last


def scratch_directory(spec: FunctionSpec, options: WorkerOptions) -> str:
    if options.sandbox is not None:
        own = options.sandbox.scratch_dir(spec.function)
        if own is not None:
            return str(own)
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


def spawn_interpreter(
    python: str,
    spec: FunctionSpec,
    env: dict[str, str],
    theirs: socket.socket,
    output_fd: int,
    boot: str = BOOT_CODE,
    cell: Cell | None = None,
) -> SpawnedProcess:
    lifeline = node_lifeline()
    argv = [python, "-c", boot, str(theirs.fileno()), str(lifeline)]
    popen = start_child(argv, spec.code_dir, env, theirs, output_fd, lifeline, cell=cell)
    return SpawnedProcess(popen)


def start_child(
    argv: list[str],
    cwd: str | Path,
    env: dict[str, str],
    theirs: socket.socket,
    output_fd: int,
    *passed: int,
    cell: Cell | None = None,
    uid: int | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a session of its own, passing it ``theirs`` (its end of the
    socket pair) and the descriptors ``passed``, and writing its stdout and stderr to
    ``output_fd``; as the user of ``cell`` (or ``uid``), behind its Landlock fence, and
    moved into ``cell`` at once:
    the process reads its first frame only once its interpreter has started, long
    after."""
    if cell is not None:
        uid = cell.confinement.uid
        argv = fenced_argv(argv, cell.confinement)
    if uid == os.getuid():
        uid = None  # no change of user (which a node that is not root may not ask for)
    # A blocking fork/exec of a few milliseconds, cheaper than asyncio's subprocess
    # machinery (a child watcher per process on 3.11).
    popen = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=output_fd,
        stderr=output_fd,
        pass_fds=(theirs.fileno(), *passed),
        start_new_session=True,
        user=uid,
        group=uid,
        extra_groups=[] if uid is not None else None,
    )
    if cell is not None:
        try:
            cell.adopt(popen.pid)
        except OSError:
            popen.kill()
            popen.wait()
            raise
    return popen


def init_message(spec: FunctionSpec, options: WorkerOptions) -> Init:
    return Init(
        handler=spec.handler,
        function_name=spec.function,
        function_version=spec.lambda_version,
        memory_mb=spec.memory,
        timeout=spec.timeout,
        log_limit=options.log_limit,
        log_group=f"/aws/lambda/{spec.function}",
        log_stream=log_stream(spec),
        code_dir=str(spec.code_dir),
    )


def log_stream(spec: FunctionSpec) -> str:
    return f"{time.strftime('%Y/%m/%d')}/[{spec.lambda_version}]triggerfish"


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


def read_status_kb(pid: int, field: bytes) -> int | None:
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(field):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None
