"""An ``Executor`` that calls Python handlers in this process: the runner, the bus and
the store stay real, only the execution environment is left out.

A handler gets the event and a ``triggerfish.context.Context`` as in an environment;
what it emits is returned with its result, as the runtime returns it, so the runner
publishes it (or not) by its own rules. Its return value becomes the JSON result, an
exception it raises an ``error`` with the exception's class name, message and stack;
``print`` and ``logging`` output during the call is its ``logs``. ``async def``
handlers are awaited on the harness's loop, so they may ``asyncio.sleep`` on its clock.

Not simulated: memory and time limits, process isolation, the function's own
environment variables and virtual environment.

``import_handler`` finds a manifest's handler in its code folder. Functions of one
manifest often use the same module name (``main.handler``): each function's modules
are imported on their own and then taken out of ``sys.modules``, so the next
function imports its own ``main``.
"""

from __future__ import annotations

import contextvars
import inspect
import io
import logging
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TextIO

import orjson

from triggerfish.clock import SYSTEM_CLOCK, Clock
from triggerfish.context import Context, set_current_context
from triggerfish.errors import ValidationError
from triggerfish.runtime.base import EmitRequest, FunctionSpec, InvocationRequest, InvocationResult
from triggerfish.runtime.python.loader import LoadError, load_handler, user_frames

Handler = Callable[[Any, Context], Any]
#: Finds the handler of a function version; raising ``LoadError`` fails the invocation
#: as a failed init does.
HandlerSource = Callable[[FunctionSpec], Handler]

_output: contextvars.ContextVar[io.StringIO | None] = contextvars.ContextVar(
    "triggerfish_testing_output", default=None
)


class InProcessExecutor:
    def __init__(self, handlers: HandlerSource, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self._handlers = handlers
        self._clock = clock
        self._loaded: dict[str, Handler] = {}
        self._running: dict[str, int] = {}
        self._capture: _Capture | None = None

    async def start(self) -> None:
        if self._capture is None:
            self._capture = _Capture()

    async def stop(self, *, grace: float = 10.0) -> None:
        if self._capture is not None:
            self._capture.close()
            self._capture = None

    def free_slots(self, spec: FunctionSpec) -> int:
        return spec.max_concurrency - self._running.get(spec.key, 0)

    async def retire(self, function: str) -> None:
        for key in [k for k in self._loaded if k.partition(":")[0] == function]:
            del self._loaded[key]

    async def invoke(
        self, spec: FunctionSpec, request: InvocationRequest, *, wait: float | None = None
    ) -> InvocationResult:
        result = InvocationResult(
            request_id=request.request_id,
            status="ok",
            started_at=self._clock.time(),
            memory_size_mb=spec.memory,
            version=spec.version,
        )
        handler = self._loaded.get(spec.key)
        if handler is None:
            try:
                handler = self._loaded[spec.key] = self._handlers(spec)
            except LoadError as exc:
                return _failed(result, exc.error_type, exc.message, exc.stack_trace)
            result.init_duration_ms = 0.0
        try:
            event = orjson.loads(request.payload) if request.payload else {}
        except orjson.JSONDecodeError as exc:
            return _failed(result, "Runtime.UnmarshalError", f"Unable to parse the event: {exc}")
        emitted: list[EmitRequest] = []
        context = Context(
            aws_request_id=request.request_id,
            function_name=spec.function,
            function_version=spec.lambda_version,
            memory_limit_in_mb=spec.memory,
            invoked_function_arn=request.invoked_arn or spec.arn,
            deadline=time.monotonic() + spec.timeout,
            client_context=request.client_context,
            payload=event,
            emitter=_checked(emitted.append),
        )
        output = io.StringIO()
        token = _output.set(output)
        capture = self._capture or _Capture()
        self._capture = capture
        capture.enter()
        set_current_context(context)
        self._running[spec.key] = self._running.get(spec.key, 0) + 1
        started = time.perf_counter()
        try:
            value = handler(event, context)
            if inspect.isawaitable(value):
                value = await value
        except Exception as exc:
            _failed(result, type(exc).__name__, str(exc), _user_frames(exc))
        else:
            try:
                result.result = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
                result.emitted = emitted
            except orjson.JSONEncodeError as exc:
                _failed(result, "Runtime.MarshalError", f"Unable to marshal response: {exc}")
        finally:
            self._running[spec.key] -= 1
            set_current_context(None)
            capture.exit()
            _output.reset(token)
        result.duration_ms = (time.perf_counter() - started) * 1000
        result.billed_duration_ms = max(1, round(result.duration_ms))
        result.logs = output.getvalue()
        return result


def _failed(
    result: InvocationResult, error_type: str, message: str, stack: Iterable[str] = ()
) -> InvocationResult:
    result.status = "error"
    result.error_type = error_type
    result.error_message = message
    result.stack_trace = list(stack)
    result.result = None
    return result


def _user_frames(exc: BaseException) -> list[str]:
    """The traceback without the runtime's frames, this module's included."""
    here = f'File "{Path(__file__).parent}'
    return [frame for frame in user_frames(exc) if not frame.lstrip().startswith(here)]


def _checked(append: Callable[[EmitRequest], None]) -> Callable[[EmitRequest], None]:
    """An emitter that refuses data JSON cannot carry, at the ``emit`` call, as the
    runtime does."""

    def emit(request: EmitRequest) -> None:
        try:
            orjson.dumps(request.data)
        except TypeError as exc:
            raise ValidationError(f"emit: the event data cannot be serialised: {exc}") from exc
        append(request)

    return emit


def import_handler(handler: str, code_dir: Path) -> Handler:
    """The handler ``module.function`` of the code in ``code_dir``; ``LoadError`` (with
    Lambda's error types) when it cannot be found or imported."""
    folder = str(Path(code_dir).resolve())
    top = handler.replace("/", ".").split(".", 1)[0]
    # Modules of that name that another function (or the test) imported step aside.
    aside = {
        name: sys.modules.pop(name)
        for name in list(sys.modules)
        if name == top or name.startswith(top + ".")
    }
    before = set(sys.modules)
    added = folder not in sys.path
    try:
        return load_handler(handler, folder)
    finally:
        if added and folder in sys.path:
            sys.path.remove(folder)
        for name in set(sys.modules) - before:
            source = getattr(sys.modules[name], "__file__", None) or ""
            if source.startswith(folder):
                del sys.modules[name]
        sys.modules.update(aside)


class _Capture:
    """While invocations run, ``sys.stdout`` and ``sys.stderr`` write to the output of
    the one running (a context variable), and to where they wrote before outside of
    one; the root logger writes to it too. The streams are swapped per invocation,
    since a test runner may swap them between tests."""

    def __init__(self) -> None:
        self._handler = _LogHandler()
        logging.getLogger().addHandler(self._handler)
        self._depth = 0
        self._saved: tuple[TextIO, TextIO] | None = None

    def enter(self) -> None:
        self._depth += 1
        if self._depth == 1:
            self._saved = sys.stdout, sys.stderr
            sys.stdout = _Tee(sys.stdout)
            sys.stderr = _Tee(sys.stderr)

    def exit(self) -> None:
        self._depth -= 1
        if self._depth == 0 and self._saved is not None:
            sys.stdout, sys.stderr = self._saved
            self._saved = None

    def close(self) -> None:
        logging.getLogger().removeHandler(self._handler)


class _Tee(io.TextIOBase):
    def __init__(self, outside: TextIO) -> None:
        super().__init__()
        self._outside = outside

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        output = _output.get()
        if output is None:
            return self._outside.write(text)
        return output.write(text)

    def flush(self) -> None:
        if _output.get() is None:
            self._outside.flush()


class _LogHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("[%(levelname)s]\t%(name)s\t%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        output = _output.get()
        if output is not None:
            output.write(self.format(record) + "\n")
