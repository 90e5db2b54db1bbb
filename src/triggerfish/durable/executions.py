"""``DurableExecutions``: the application layer of durable functions (docs/durable.md).

An invocation of a durable function starts an *execution*: the function receives what
AWS's Durable Execution SDK expects (``DurableExecutionArn``, ``CheckpointToken``,
``InitialExecutionState``), and its SDK checkpoints every operation through the Lambda
API, which lands here. When the handler suspends (a wait, a callback, a step's retry)
the invocation ends and nothing is held: a timer in the store, fired by the leader, or
a callback's result puts a *resume* on the function's asynchronous-invoke topic, whose
delivery promise (retries, any node) runs the execution again, replaying what its log
holds. An invocation that never reports back (a node killed) is woken by a watchdog.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import orjson

from triggerfish.durable import operations as ops
from triggerfish.durable.store import Checkpointed, DurableStore, ExecutionRecord
from triggerfish.errors import NotFoundError, ValidationError
from triggerfish.functions.durable import DurableSettings
from triggerfish.ids import new_id
from triggerfish.runtime.base import FunctionSpec
from triggerfish.store.records import VersionRecord
from triggerfish.tasks import cancel_task

log = logging.getLogger("triggerfish.durable")

#: The member of a resume's payload: the execution to run again.
RESUME = "TriggerfishDurableResume"
RESUMES = b'{"' + RESUME.encode()  # how every resume payload starts
#: Failed invocations in a row before an execution ends ``FAILED``.
INVOCATION_ATTEMPTS = 3
#: Executions whose function ``function_of`` remembers.
FUNCTIONS_KEPT = 10_000
#: How often the leader of a cluster looks for timers that came due (another node may
#: have set one); a single node sleeps until its next timer or its next write.
TICK = 0.2
#: The longest a single node sleeps without looking (and between passes that forget
#: ended executions).
IDLE = 60.0
_NAME_OK = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")

Publish = Callable[[str, bytes], Awaitable[object]]
Invoke = Callable[[str, bytes], Awaitable[tuple[str | None, dict[str, Any] | None]]]
VersionOf = Callable[[str, str], Awaitable[VersionRecord]]


def resume_payload(execution_id: str) -> bytes:
    return orjson.dumps({RESUME: execution_id})


def resumed_execution(payload: bytes) -> str | None:
    """The execution a resume names; None for any other payload."""
    if not payload.startswith(RESUMES):
        return None
    try:
        value = orjson.loads(payload).get(RESUME)
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def execution_arn(record: ExecutionRecord, region: str, account: str) -> str:
    return (
        f"arn:aws:lambda:{region}:{account}:function:{record.function}:{record.qualifier}"
        f"/durable-execution/{record.name}/{record.id}"
    )


def execution_id_of(arn: str) -> str:
    """The execution an ARN names (its last segment); ``ValidationError`` otherwise."""
    if "/durable-execution/" not in arn:
        raise ValidationError(
            f"{arn!r} is not a durable execution ARN (…:function:NAME:QUALIFIER"
            "/durable-execution/EXECUTION_NAME/EXECUTION_ID)",
            field="DurableExecutionArn",
        )
    return arn.rsplit("/", 1)[-1]


def checkpoint_token(record: ExecutionRecord) -> str:
    return f"{record.id}.{record.generation}"


def token_generation(token: str, execution_id: str) -> int:
    """The generation a checkpoint token names; ``ValidationError`` when it is not a
    token of this execution."""
    owner, _, number = token.rpartition(".")
    if owner != execution_id or not number.isdigit():
        raise ValidationError(
            "CheckpointToken is not a token of this execution; pass the one the "
            "invocation received or the last checkpoint returned",
            field="CheckpointToken",
        )
    return int(number)


class DurableExecutions:
    def __init__(
        self,
        store: DurableStore,
        *,
        version_of: VersionOf,
        publish: Publish,
        invoke: Invoke,
        leading: Callable[[], bool],
        region: str,
        account: str,
        shared: bool = False,
        tick: float = TICK,
    ) -> None:
        self.store = store
        self._version_of = version_of
        self._publish = publish
        self._invoke = invoke
        self._leading = leading
        self.region = region
        self.account = account
        self._tick = tick
        # Other nodes write the store too: their timers are seen by looking every tick.
        self._shared = shared
        self._written = asyncio.Event()
        store.changed = self._written.set
        self._settings: dict[tuple[str, str], DurableSettings | None] = {}
        self._functions: dict[str, str] = {}
        self._task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._watch(), name="durable-timers")

    async def stop(self) -> None:
        await cancel_task(self._task)
        self._task = None
        for task in list(self._background):
            await cancel_task(task)

    async def settings_of(self, spec: FunctionSpec) -> DurableSettings | None:
        """The ``durable`` setting of the version ``spec`` runs (versions never change,
        so it is read once)."""
        key = (spec.function, spec.version)
        if key not in self._settings:
            try:
                version = await self._version_of(spec.function, spec.version)
            except NotFoundError:
                return None
            self._settings[key] = version.settings.durable
        return self._settings[key]

    async def function_of(self, execution_id: str) -> str:
        """The function an execution belongs to, ``NotFoundError`` when there is no such
        execution. An execution never changes function, so each is read once: the
        SDK's checkpoints then cost no read before their transaction."""
        function = self._functions.get(execution_id)
        if function is None:
            function = (await self.store.get(execution_id)).function
            if len(self._functions) >= FUNCTIONS_KEPT:
                self._functions.clear()
            self._functions[execution_id] = function
        return function

    def arn(self, record: ExecutionRecord) -> str:
        return execution_arn(record, self.region, self.account)

    async def start_execution(
        self,
        spec: FunctionSpec,
        settings: DurableSettings,
        payload: bytes,
        *,
        name: str | None = None,
        number: int | None = None,
        begun: bool = False,
    ) -> tuple[ExecutionRecord, bool]:
        """A new execution of ``spec`` with ``payload`` as its input; the one already
        started under ``name`` (and False) when there is one. With ``begun``, a new
        execution is kept as ``begin`` would leave it, in the same transaction: its
        first invocation holds the first token."""
        if name is not None and not (1 <= len(name) <= 64 and set(name) <= _NAME_OK):
            raise ValidationError(
                "a durable execution name is 1 to 64 letters, digits, '-' or '_'",
                field="DurableExecutionName",
            )
        now = self.store.clock()
        execution_id = new_id()
        qualifier = spec.label or (str(number) if number is not None else spec.version)
        record = ExecutionRecord(
            id=execution_id,
            function=spec.function,
            name=name or execution_id,
            version=spec.version,
            qualifier=qualifier,
            status="RUNNING",
            input=payload.decode(),
            result=None,
            error=None,
            started_at=now,
            ended_at=None,
            timeout_at=now + settings.execution_timeout,
            retention=settings.retention,
            generation=1 if begun else 0,
            failures=0,
            wake_at=now + _watchdog(spec) if begun else None,
        )
        return await self.store.create(record)

    async def begin(self, execution_id: str, spec: FunctionSpec) -> ExecutionRecord:
        return await self.store.begin(execution_id, watchdog=_watchdog(spec))

    async def envelope(self, record: ExecutionRecord, *, fresh: bool = False) -> bytes:
        """What the handler receives: the SDK's ``DurableExecutionInvocationInput``.
        A ``fresh`` execution (just created) has nothing in its log but its start."""
        if fresh:
            found = [(0, ops.execution_document(record.id, record.input, record.started_at))]
        else:
            found = await self.store.operations(record.id, limit=PAGE + 1)
        page = found[:PAGE]
        state: dict[str, Any] = {"Operations": [ops.wire(doc) for _, doc in page]}
        if len(found) > PAGE:
            state["NextMarker"] = str(page[-1][0])
        return orjson.dumps(
            {
                "DurableExecutionArn": self.arn(record),
                "CheckpointToken": checkpoint_token(record),
                "InitialExecutionState": state,
            }
        )

    async def ended(self, record: ExecutionRecord, output: bytes | None) -> ExecutionRecord:
        """Record what the invocation returned (the SDK's output document)."""
        try:
            document = orjson.loads(output or b"null")
        except orjson.JSONDecodeError:
            document = None
        status = document.get("Status") if isinstance(document, dict) else None
        if status not in ("SUCCEEDED", "FAILED", "PENDING"):
            return await self.failed(
                record,
                {
                    "ErrorType": "InvalidDurableOutput",
                    "ErrorMessage": "the handler did not return the Durable Execution "
                    "SDK's output: wrap it with @durable_execution",
                },
            )
        assert isinstance(document, dict)
        result = document.get("Result")
        error = document.get("Error")
        # A result too large to return was checkpointed (and ended the execution).
        return await self.store.finish(record, status, result or None, error)

    async def failed(self, record: ExecutionRecord, error: dict[str, Any]) -> ExecutionRecord:
        return await self.store.failed(record, error, attempts=INVOCATION_ATTEMPTS)

    async def checkpoint(
        self, arn: str, token: str, updates: Sequence[Any]
    ) -> tuple[str | None, list[ops.Document]]:
        """Apply a checkpoint; the next token (None when this invocation must stop: the
        token is stale or the execution ended) and the operations it changed."""
        execution_id = execution_id_of(arn)
        generation = token_generation(token, execution_id)
        for update in updates:
            ops.check_update(update)
        done: Checkpointed = await self.store.checkpoint(execution_id, generation, updates)
        for op_id, function, payload in done.invokes:
            self._run_invoke(execution_id, op_id, function, payload)
        if not done.accepted or done.record is None:
            return None, []
        record = done.record
        next_token = None if record.ended else checkpoint_token(record)
        return next_token, [ops.wire(doc) for doc in done.documents]

    async def state(
        self, arn: str, token: str, marker: str | None, limit: int
    ) -> tuple[list[ops.Document], str | None]:
        execution_id = execution_id_of(arn)
        token_generation(token, execution_id)
        after = int(marker) if marker and marker.lstrip("-").isdigit() else -1
        found = await self.store.operations(execution_id, after=after, limit=limit + 1)
        page = found[:limit]
        next_marker = str(page[-1][0]) if len(found) > limit else None
        return [ops.wire(doc) for _, doc in page], next_marker

    async def resume(self, record: ExecutionRecord) -> None:
        await self._publish(record.function, resume_payload(record.id))

    async def wake_due(self) -> int:
        """One pass of the leader: a resume for every execution with a timer due."""
        due = await self.store.due()
        for execution_id, function in due:
            try:
                await self._publish(function, resume_payload(execution_id))
            except Exception:
                log.exception("could not resume durable execution %s", execution_id)
                continue
            await self.store.woken(execution_id)
        return len(due)

    def _run_invoke(self, execution_id: str, op_id: str, function: str, payload: str) -> None:
        """Run a chained invoke's function; its result completes the operation, whose
        execution the next pass resumes."""

        async def run() -> None:
            try:
                result, error = await self._invoke(function, payload.encode())
            except Exception as exc:
                result, error = None, {"ErrorType": type(exc).__name__, "ErrorMessage": str(exc)}
            await self.store.complete_invoke(execution_id, op_id, result=result, error=error)

        task = asyncio.create_task(run(), name=f"durable-invoke-{op_id}")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _watch(self) -> None:
        """The leader fires what came due, then sleeps until the next timer, a write of
        this node (which may have set an earlier one), or at most ``IDLE`` seconds; a
        node of a cluster looks every ``tick`` as well. A node that does not lead looks
        again every ``tick`` to see whether it has come to."""
        forgotten_at = time.monotonic()
        while True:
            self._written.clear()  # a write from here on wakes the sleep below
            delay = self._tick
            if self._leading():
                try:
                    await self.wake_due()
                    if time.monotonic() - forgotten_at > IDLE:
                        forgotten_at = time.monotonic()
                        await self.store.forget_ended()
                    delay = await self._until_next()
                except Exception:
                    log.exception("durable timers failed; will try again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._written.wait(), delay)

    async def _until_next(self) -> float:
        upcoming = await self.store.next_due()
        longest = self._tick if self._shared else IDLE
        if upcoming is None:
            return longest
        delay = upcoming - self.store.clock()
        # Still due after the pass (a resume that could not be published, or more due
        # than one pass takes): look again a tick later, as a cluster does.
        return self._tick if delay <= 0 else min(delay, longest)


def _watchdog(spec: FunctionSpec) -> float:
    # The watchdog leaves the invocation its whole timeout, and a margin.
    return spec.timeout + 5.0


#: Operations the invocation input carries; the SDK pages through the rest.
PAGE = 1000


def error_of(document: Mapping[str, Any] | None) -> tuple[str, str]:
    """An ``ErrorObject``'s type and message, for an invocation's error."""
    if not isinstance(document, Mapping):
        return "DurableExecutionFailed", "the durable execution failed"
    return (
        str(document.get("ErrorType") or "DurableExecutionFailed"),
        str(document.get("ErrorMessage") or ""),
    )
