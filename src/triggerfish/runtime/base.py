"""What the executor is asked to run, and what it reports back.

``FunctionSpec`` is everything an execution environment needs about one immutable
function version. ``InvocationRequest`` is one call; ``InvocationResult`` is what came
of it, with the metering figures of a Lambda REPORT line. The executor never raises
for a failed invocation: the status says what happened.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

Status = Literal["ok", "error", "timeout", "oom", "crashed", "throttled"]
#: The region functions see (``AWS_REGION``) and ARNs name, unless a node sets its own
#: (``TRIGGERFISH_REGION``); the account of every ARN (one installation is one account).
DEFAULT_REGION = "us-east-1"
LATEST = "$LATEST"
#: The folder of a function's code that holds its layers' files (what Lambda mounts as
#: ``/opt``); ``TRIGGERFISH_OPT`` names it to the function.
OPT_DIR = ".triggerfish-opt"
ACCOUNT = "000000000000"
RuntimeFamily = Literal["python", "nodejs", "provided"]


def runtime_family(runtime: str) -> RuntimeFamily:
    """How environments of ``runtime`` start: ``python`` and ``python3.X`` run the Python
    bootstrap, ``nodejs`` and ``nodejsNN.x`` the Node.js one, ``provided`` and
    ``provided.al2*`` the function's own ``bootstrap`` behind the Lambda Runtime API."""
    if runtime.startswith("nodejs"):
        return "nodejs"
    if runtime.startswith("provided"):
        return "provided"
    return "python"


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    function: str
    version: str  # the version id (content digest prefix)
    code_dir: Path  # unpacked code, read-only for the function
    handler: str  # "module.function", module relative to code_dir (dots for packages)
    runtime: str = "python"  # "python[3.X]", "nodejs[NN.x]" or "provided[.al2[023]]"
    memory: int = 128  # MB
    timeout: float = 10.0  # seconds
    environment: Mapping[str, str] = field(default_factory=dict)
    max_concurrency: int = 10
    python: str | None = None  # interpreter of the function's environment; None: the server's
    min_warm: int = 0  # environments kept ready (provisioned concurrency)
    idle_ttl: float | None = None  # seconds before an idle environment is reaped; None: node's
    max_invocations: int = 0  # an environment is replaced after this many; 0: never
    snapstart: bool = False  # fork environments from a template that already ran the init
    #: Each invocation runs one of a durable execution (``triggerfish.durable``).
    durable: bool = False
    region: str = DEFAULT_REGION
    account: str = ACCOUNT
    #: The version as Lambda names it, in the ``START`` line, ``context.function_version``
    #: and ``AWS_LAMBDA_FUNCTION_VERSION``: its number, or ``$LATEST`` when reached so;
    #: empty: the version id.
    label: str = ""

    @property
    def key(self) -> str:
        # On Lambda, $LATEST has environments of its own, whose version reads $LATEST.
        if self.label == LATEST:
            return f"{self.function}:{self.version}:{LATEST}"
        return f"{self.function}:{self.version}"

    @property
    def lambda_version(self) -> str:
        return self.label or self.version

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account}:function:{self.function}"


@dataclass(frozen=True, slots=True)
class EmitRequest:
    """An event a handler emitted through ``context.emit``; published by the caller of
    the executor after the invocation succeeds and before its input is acknowledged."""

    topic: str
    type: str
    data: Any
    source: str | None = None
    subject: str | None = None
    id: str | None = None
    extensions: Mapping[str, str | int | bool] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class InvocationRequest:
    request_id: str
    payload: bytes  # JSON document given to the handler as ``event``
    invoked_arn: str | None = None  # defaults to the spec's ARN (with alias qualifier)
    trace_id: str | None = None  # a W3C ``traceparent`` (or an X-Ray trace header)
    client_context: Mapping[str, Any] | None = None
    trace_state: str | None = None  # the W3C ``tracestate`` that goes with ``trace_id``


@dataclass(slots=True)
class InvocationResult:
    request_id: str
    status: Status
    result: bytes | None = None  # JSON of the handler's return value, when ok
    error_type: str | None = None
    error_message: str | None = None
    stack_trace: list[str] = field(default_factory=list)
    logs: str = ""  # START ... END ... REPORT, with the handler's output between
    started_at: float = 0.0  # unix seconds when the handler started
    duration_ms: float = 0.0
    billed_duration_ms: int = 0
    memory_size_mb: int = 0
    max_memory_used_mb: int = 0
    init_duration_ms: float | None = None  # set on a cold start
    emitted: list[EmitRequest] = field(default_factory=list)
    version: str = ""  # the function version that ran (or would have run) it

    @property
    def cold_start(self) -> bool:
        return self.init_duration_ms is not None

    def error_document(self) -> dict[str, Any]:
        """Lambda's error shape: ``{errorType, errorMessage, stackTrace}``."""
        return {
            "errorType": self.error_type or "Error",
            "errorMessage": self.error_message or "",
            "stackTrace": list(self.stack_trace),
        }


@dataclass(frozen=True, slots=True)
class PoolStats:
    """The environments of one function version at one moment (read at scrape time)."""

    function: str
    version: str
    busy: int  # environments running an invocation
    idle: int  # warm environments waiting for one
    starting: int  # environments being started (process start and init)
    waiting: int  # invocations waiting for a concurrency slot or for memory
    max_concurrency: int
    min_warm: int
    memory_mb: int  # memory size of one environment
    reserved_mb: int  # memory budget held by this version's environments
    invocations: int  # invocations started since the pool was created
    cold_starts: int  # environments started for an invocation (init on the request path)
    prewarmed: int  # environments started ahead of demand (min_warm), no cold start
    recycled: int  # environments replaced after max_invocations or memory growth
    reaped: int  # environments stopped after idle_ttl
    snapshot: bool  # a snapstart template process is running for this version
    #: invocations sent to an environment as soon as it answered the one before (or
    #: queued behind its running one), without waiting for a free slot first
    handed_over: int = 0


class Executor(Protocol):
    async def start(self) -> None: ...

    async def stop(self, *, grace: float = 10.0) -> None:
        """Let invocations in flight finish within ``grace`` seconds, then kill workers."""

    def free_slots(self, spec: FunctionSpec) -> int:
        """How many more invocations of ``spec`` may start now (``max_concurrency`` minus
        those running)."""

    async def invoke(
        self, spec: FunctionSpec, request: InvocationRequest, *, wait: float | None = None
    ) -> InvocationResult:
        """Run one invocation. With no free slot, wait up to ``wait`` seconds (forever when
        None) for one, then return a result with status ``throttled``."""

    async def retire(self, function: str) -> None:
        """Stop the warm environments of every version of ``function`` (after a delete)."""
