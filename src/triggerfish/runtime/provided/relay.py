"""The ``provided`` execution environment: the Lambda Runtime API in front of the
function's own ``bootstrap`` executable.

Run as ``python -c RELAY_CODE FD`` like the Python bootstrap (FD is its end of the
protocol socket). On ``Init`` it serves the Runtime API on ``127.0.0.1`` at a port of
its own, and starts ``<code folder>/bootstrap`` with ``AWS_LAMBDA_RUNTIME_API`` set to
that address, its output going to the environment's output file, in the relay's
process group (a timeout kills both), under the memory rlimit. It then relays:

- the init phase ends at the bootstrap's first ``GET .../invocation/next`` (``Ready``),
  or with ``POST .../init/error`` or the bootstrap's exit (``InitFailed``);
- each ``Invoke`` is the answer to a waiting ``next``, with Lambda's headers
  (``Lambda-Runtime-Aws-Request-Id``, ``-Deadline-Ms``, ``-Invoked-Function-Arn``,
  ``-Trace-Id``, ``-Client-Context``);
- ``POST .../invocation/{id}/response`` (202) or ``.../error`` (202) becomes the ``Done``,
  with the output captured since the invocation began and the bootstrap's memory peak;
- a response over ``MAX_PAYLOAD`` gets 413 and ends the invocation with
  ``Function.ResponseSizeTooLarge``; an unknown request id gets 400, a call out of turn
  403, a relay that lost its executor 500, each with Lambda's error body
  ``{"errorMessage": ..., "errorType": ...}``;
- when the bootstrap exits during an invocation the relay exits the same way, so the
  executor reports ``crashed`` with that status.

The relay writes ``START``, ``END`` and ``REPORT`` around the output, or Lambda's JSON
records when ``AWS_LAMBDA_LOG_FORMAT`` is ``JSON`` (``PlatformLog``); the bootstrap's own
output stays as it writes it, as on Lambda.

When the relay runs in a function's virtual environment (it has requirements), that
environment's ``bin`` comes first on the bootstrap's ``PATH``, so ``python3`` in a
bootstrap script is the function's own. A bootstrap that starts with ``#!/bin/sh`` runs
with bash in its ``sh`` mode when the machine has bash, as on Amazon Linux, where
``/bin/sh`` is bash: scripts written there use ``set -o pipefail`` and other things that
a ``/bin/sh`` such as dash lacks. The HTTP server is a small single-threaded
one over ``selectors``: the relay is in every ``provided`` environment, and its start
is part of the cold start.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import selectors
import signal
import socket
import sys
import time
from typing import Any

from triggerfish.runtime.protocol import (
    Done,
    FrameReader,
    Init,
    InitFailed,
    Invoke,
    Ready,
    ToEnvironment,
    describe_exit,
    encode_frame,
)
from triggerfish.runtime.provided.http import (
    MAX_PAYLOAD,
    TOO_LARGE,
    Connection,
    Request,
    error_body,
)
from triggerfish.runtime.report import PlatformLog, cap_output
from triggerfish.runtime.tracing import trace_header

#: How the executor starts a relay. The relay needs two light modules of the runtime
#: (the protocol and the report lines), not the ``triggerfish`` package, whose
#: ``__init__`` imports the whole SDK (tens of milliseconds of every cold start): the
#: parent packages are registered as bare namespaces before the relay is imported.
RELAY_CODE = (
    "import sys, types, importlib.util as u\n"
    "root = u.find_spec('triggerfish').submodule_search_locations[0]\n"
    "for name in ('triggerfish', 'triggerfish.runtime', 'triggerfish.runtime.provided'):\n"
    "    package = types.ModuleType(name)\n"
    "    package.__path__ = [root + name[len('triggerfish'):].replace('.', '/')]\n"
    "    sys.modules[name] = package\n"
    "from triggerfish.runtime.provided.relay import main\n"
    "main()\n"
)
PREFIX = "/2018-06-01/runtime"
MIN_DATA_LIMIT_MB = 48
SH_SHEBANG = "#!/bin/sh"
BASH_PATHS = ("/bin/bash", "/usr/bin/bash")
OUTPUT_FD = 1
SEND_TIMEOUT = 30.0


class Relay:
    def __init__(self, fd: int, init: Init, reader: FrameReader, pending: list[Any]) -> None:
        self.fd = fd
        self.init = init
        self.reader = reader
        self.selector = selectors.DefaultSelector()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.setblocking(False)
        self.port = self.server.getsockname()[1]
        self.connections: dict[int, Connection] = {}
        self.waiting: list[Connection] = []  # parked `next` calls
        self.queue: list[Invoke] = [m for m in pending if isinstance(m, Invoke)]
        self.current: Invoke | None = None
        self.ready = False
        self.started = time.perf_counter()
        self.init_ms = 0.0
        self.report_init: float | None = None
        self.invoke_started = 0.0
        self.invoke_started_at = 0.0
        self.child = 0
        self.child_fd = -1
        self.platform = PlatformLog.from_environment(os.environ)

    # -- the bootstrap -------------------------------------------------------------

    def start_bootstrap(self) -> bool:
        init = self.init
        path = os.path.join(init.code_dir, "bootstrap")
        if not os.path.isfile(path) or not os.access(path, os.X_OK):
            self.init_failed(
                "Runtime.InvalidEntrypoint",
                f"Couldn't find a valid bootstrap: {path} must be an executable file",
            )
            return False
        env = dict(os.environ)
        env["AWS_LAMBDA_RUNTIME_API"] = f"127.0.0.1:{self.port}"
        if sys.prefix != sys.base_prefix:  # the function's own virtual environment
            env["PATH"] = os.path.join(sys.prefix, "bin") + os.pathsep + env.get("PATH", "")
            env["VIRTUAL_ENV"] = sys.prefix
        limit = max(init.memory_mb, MIN_DATA_LIMIT_MB) * 1024 * 1024
        _, hard = resource.getrlimit(resource.RLIMIT_DATA)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
        program, argv = bootstrap_command(path)
        try:
            self.child = os.posix_spawn(program, argv, env)
        except OSError as exc:
            self.init_failed("Runtime.InvalidEntrypoint", f"Cannot run {path}: {exc.strerror}")
            return False
        self.child_fd = os.pidfd_open(self.child)
        return True

    def child_exited(self) -> None:
        _, status = os.waitpid(self.child, 0)
        code = os.waitstatus_to_exitcode(status)
        self.child = 0
        if not self.ready:
            self.init_failed("Runtime.ExitError", describe_exit(code))
            os._exit(0)
        # Exit as the bootstrap did: the executor reports that status as a crash.
        sys.stdout.flush()
        if code < 0:
            signal.signal(-code, signal.SIG_DFL)
            os.kill(os.getpid(), -code)
        os._exit(code)

    def peak_mb(self) -> int:
        try:
            with open(f"/proc/{self.child}/status", "rb") as status:
                for line in status:
                    if line.startswith(b"VmHWM:"):
                        return (int(line.split()[1]) + 1023) // 1024
        except (OSError, ValueError, IndexError):
            pass
        return 0

    def reset_peak(self) -> None:
        with (
            contextlib.suppress(OSError),
            open(f"/proc/{self.child}/clear_refs", "wb") as clear,
        ):
            clear.write(b"5")

    # -- the executor's side -----------------------------------------------------------

    def send(self, message: Any) -> None:
        view = memoryview(encode_frame(message))
        while view:
            view = view[os.write(self.fd, view) :]

    def init_failed(self, error_type: str, message: str, trace: list[str] | None = None) -> None:
        elapsed = (time.perf_counter() - self.started) * 1000
        self.send(InitFailed(error_type, message, trace or [], elapsed, drain(self.init)))

    def from_executor(self) -> None:
        data = os.read(self.fd, 1 << 20)
        if not data:  # the executor is gone
            self.stop()
        for message in self.reader.feed(data):
            if isinstance(message, Invoke):
                self.queue.append(message)
        self.dispatch()

    def dispatch(self) -> None:
        while self.ready and self.current is None and self.queue and self.waiting:
            connection = self.waiting.pop(0)
            invoke = self.queue.pop(0)
            self.current = invoke
            self.reset_peak()
            self.invoke_started_at = time.time()
            self.invoke_started = time.perf_counter()
            deadline = int((time.time() + self.init.timeout) * 1000)
            headers = {
                "Lambda-Runtime-Aws-Request-Id": invoke.request_id,
                "Lambda-Runtime-Deadline-Ms": str(deadline),
                "Lambda-Runtime-Invoked-Function-Arn": invoke.invoked_arn,
                "Lambda-Runtime-Trace-Id": invoke.trace_id or trace_header(invoke.request_id),
            }
            if invoke.client_context is not None:
                headers["Lambda-Runtime-Client-Context"] = json.dumps(invoke.client_context)
            connection.send(200, invoke.payload, headers)
            self.after_send(connection)

    def finish(self, status: str, result: bytes | None, error: dict[str, Any] | None) -> None:
        invoke = self.current
        assert invoke is not None
        self.current = None
        init = self.init
        duration_ms = (time.perf_counter() - self.invoke_started) * 1000
        peak = self.peak_mb()
        if peak > init.memory_mb and status != "oom":
            status, result = "oom", None
            error = {
                "errorType": "Runtime.OutOfMemory",
                "errorMessage": f"Runtime used {peak} MB, over its memory size of"
                f" {init.memory_mb} MB",
            }
        request_id = invoke.request_id
        platform = self.platform
        logs = (
            platform.start(request_id, init.function_version)
            + drain(init)
            + platform.end(request_id, status)
            + platform.report(
                request_id,
                duration_ms=duration_ms,
                memory_size_mb=init.memory_mb,
                max_memory_used_mb=peak,
                init_duration_ms=self.report_init,
                status=status,
            )
        )
        self.report_init = None
        trace = error.get("stackTrace") if error else None
        self.send(
            Done(
                status,
                result,
                None if error is None else str(error.get("errorType") or "Runtime.Unknown"),
                None if error is None else str(error.get("errorMessage") or ""),
                [str(line) for line in trace] if isinstance(trace, list) else [],
                logs,
                self.invoke_started_at,
                duration_ms,
                peak,
            )
        )
        if status == "oom":
            self.stop()

    # -- the Runtime API -------------------------------------------------------------

    def handle(self, connection: Connection, request: Request) -> None:
        path = request.path
        if not path.startswith(PREFIX + "/"):
            connection.send(404, error_body("NotFound", f"No such endpoint: {path}"))
            return
        route = path[len(PREFIX) :].strip("/").split("/")
        if route == ["invocation", "next"]:
            if request.method != "GET":
                connection.send(405, error_body("MethodNotAllowed", "Use GET"))
                return
            if not self.ready:
                self.ready = True
                self.init_ms = (time.perf_counter() - self.started) * 1000
                self.report_init = self.init_ms
                self.send(Ready(self.init_ms, drain(self.init)))
            if self.current is not None:
                # The runtime moved on without answering: the invocation has no result.
                self.finish("error", None, _unanswered())
            self.waiting.append(connection)
            self.dispatch()
            return
        if route == ["init", "error"]:
            if request.method != "POST":
                connection.send(405, error_body("MethodNotAllowed", "Use POST"))
            elif self.ready:
                connection.send(
                    403, error_body("InvalidStateTransition", "The init phase is over: use /error")
                )
            else:
                error = _error_document(request)
                self.init_failed(
                    str(error["errorType"]), str(error["errorMessage"]), error["stackTrace"]
                )
                connection.send(202, b'{"status":"OK"}')
            return
        if len(route) == 3 and route[0] == "invocation" and route[2] in ("response", "error"):
            self.answer(connection, request, route[1], route[2])
            return
        connection.send(404, error_body("NotFound", f"No such endpoint: {path}"))

    def answer(self, connection: Connection, request: Request, request_id: str, kind: str) -> None:
        if request.method != "POST":
            connection.send(405, error_body("MethodNotAllowed", "Use POST"))
            return
        current = self.current
        if current is None or current.request_id != request_id:
            connection.send(
                400, error_body("InvalidRequestID", f"Invalid request ID: {request_id}")
            )
            return
        if request.body is TOO_LARGE:
            self.finish(
                "error",
                None,
                {
                    "errorType": "Function.ResponseSizeTooLarge",
                    "errorMessage": "Response payload size exceeded maximum allowed payload"
                    f" size ({MAX_PAYLOAD} bytes).",
                },
            )
            connection.send(
                413,
                error_body(
                    "RequestEntityTooLarge",
                    f"Exceeded maximum allowed payload size ({MAX_PAYLOAD} bytes).",
                ),
            )
            return
        if kind == "response":
            self.finish("ok", request.body, None)
        else:
            self.finish("error", None, _error_document(request))
        connection.send(202, b'{"status":"OK"}')

    # -- the loop --------------------------------------------------------------------

    def accept(self) -> None:
        try:
            sock, _ = self.server.accept()
        except BlockingIOError:
            return
        sock.settimeout(SEND_TIMEOUT)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection = Connection(sock)
        self.connections[sock.fileno()] = connection
        self.selector.register(sock, selectors.EVENT_READ, connection)

    def readable(self, connection: Connection) -> None:
        try:
            data = connection.sock.recv(1 << 20)
        except (BlockingIOError, TimeoutError):
            return
        except OSError:
            data = b""
        if not data:
            self.drop(connection)
            return
        connection.buffer += data
        while connection not in self.waiting:
            request = connection.parse()
            if request is None:
                break
            self.handle(connection, request)
            if connection.close_after and connection not in self.waiting:
                self.drop(connection)
                return
        if connection.close_after and connection not in self.waiting:
            self.drop(connection)

    def after_send(self, connection: Connection) -> None:
        if connection.close_after:
            self.drop(connection)
        elif connection.buffer:
            self.readable_again(connection)

    def readable_again(self, connection: Connection) -> None:
        while connection not in self.waiting and connection.sock.fileno() >= 0:
            request = connection.parse()
            if request is None:
                return
            self.handle(connection, request)

    def drop(self, connection: Connection) -> None:
        if connection in self.waiting:
            self.waiting.remove(connection)
        sock = connection.sock
        if sock.fileno() >= 0:
            self.connections.pop(sock.fileno(), None)
            self.selector.unregister(sock)
            sock.close()

    def stop(self) -> None:
        if self.child:
            with contextlib.suppress(OSError):
                os.kill(self.child, signal.SIGKILL)
        os._exit(0)

    def run(self) -> None:
        selector = self.selector
        selector.register(self.server, selectors.EVENT_READ, "accept")
        selector.register(self.fd, selectors.EVENT_READ, "executor")
        if not self.start_bootstrap():
            return
        selector.register(self.child_fd, selectors.EVENT_READ, "child")
        while True:
            for key, _ in selector.select():
                what = key.data
                if what == "accept":
                    self.accept()
                elif what == "executor":
                    self.from_executor()
                elif what == "child":
                    self.child_exited()
                else:
                    self.readable(what)


def bootstrap_command(path: str) -> tuple[str, list[str]]:
    """The program and arguments that run the bootstrap at ``path``."""
    try:
        with open(path, "rb") as script:
            first = script.readline(256)
    except OSError:
        return path, [path]
    shebang = first.decode("utf-8", "replace").rstrip("\r\n")
    if shebang != SH_SHEBANG and not shebang.startswith((SH_SHEBANG + " ", SH_SHEBANG + "\t")):
        return path, [path]
    bash = next((b for b in BASH_PATHS if os.access(b, os.X_OK)), None)
    if bash is None:
        return path, [path]
    # Started as "sh", bash follows POSIX where it differs, as Amazon Linux's /bin/sh.
    return bash, ["sh", *shebang[len(SH_SHEBANG) :].split(), path]


def _unanswered() -> dict[str, Any]:
    return {
        "errorType": "Runtime.NoResponse",
        "errorMessage": "The runtime asked for the next invocation without answering this one",
    }


def _error_document(request: Request) -> dict[str, Any]:
    """The runtime's error body, as Lambda reads it: JSON with errorMessage, errorType
    and stackTrace, the type falling back to the Lambda-Runtime-Function-Error-Type
    header."""
    try:
        document = json.loads(request.body) if request.body else {}
    except ValueError:
        document = {"errorMessage": request.body.decode("utf-8", "replace")}
    if not isinstance(document, dict):
        document = {"errorMessage": json.dumps(document)}
    error_type = document.get("errorType") or request.headers.get(
        "lambda-runtime-function-error-type", "Runtime.Unknown"
    )
    trace = document.get("stackTrace")
    return {
        "errorType": str(error_type),
        "errorMessage": str(document.get("errorMessage") or ""),
        "stackTrace": [str(line) for line in trace] if isinstance(trace, list) else [],
    }


def drain(init: Init) -> str:
    """The output since the last drain, capped at the log limit, and the file emptied."""
    size = os.fstat(OUTPUT_FD).st_size
    if size == 0:
        return ""
    data = os.pread(OUTPUT_FD, min(size, init.log_limit + 1), 0)
    os.ftruncate(OUTPUT_FD, 0)
    return cap_output(data, init.log_limit, max(0, size - init.log_limit - 1))


def main() -> None:
    fd = int(sys.argv[1])
    for own in sys.argv[1:]:  # the protocol socket and the node's lifeline
        os.set_inheritable(int(own), False)
    reader = FrameReader(ToEnvironment)
    messages: list[Any] = []
    while not messages:
        data = os.read(fd, 1 << 20)
        if not data:
            return
        messages = reader.feed(data)
    init = messages[0]
    if not isinstance(init, Init):
        os._exit(2)
    os.chdir(init.code_dir)
    Relay(fd, init, reader, messages[1:]).run()
