"""The rows of the control plane, as immutable values.

Times are Unix seconds (floats). ``config`` fields hold plain JSON values: a version's
``FunctionConfig.version_config()`` and a trigger's ``TriggerConfig`` dump, so the store
does not depend on the manifest models. ``VersionRecord.settings`` gives a version's
``config`` as the typed ``FunctionConfig``: parsed on first use and kept with the
record, so readers never pick keys out of the dict (the manifest models are imported
on that first use, not with the store).

``InvocationRecord`` alone is not frozen: one is made for every invocation, and a frozen
dataclass sets each of its 21 fields through ``object.__setattr__``, which cost four
times as much as the rest of making it. Nothing changes a record once it is made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # the store sits below the runtime: no import of it at run time
    from triggerfish.functions.manifest import FunctionConfig
    from triggerfish.runtime.base import InvocationResult

LIVE = "live"
Status = Literal["ok", "error", "timeout", "oom", "crashed", "throttled"]
STATUSES: tuple[Status, ...] = ("ok", "error", "timeout", "oom", "crashed", "throttled")


@dataclass(frozen=True, slots=True)
class FunctionRecord:
    name: str
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class VersionRecord:
    function: str
    version: str  # 12 hex characters: the start of ``digest``
    number: int  # 1, 2, 3 ... per function, in order of creation
    digest: str  # sha256 hex of code and settings
    config: dict[str, Any]
    created_at: float
    _settings: FunctionConfig | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def settings(self) -> FunctionConfig:
        """``config`` as the typed ``FunctionConfig``, parsed once per record."""
        parsed = self._settings
        if parsed is None:
            from triggerfish.functions.manifest import FunctionConfig

            parsed = FunctionConfig.model_validate(self.config)
            object.__setattr__(self, "_settings", parsed)  # a cache, not a change
        return parsed


@dataclass(frozen=True, slots=True)
class AliasRecord:
    function: str
    name: str
    version: str  # the main version
    # A second version that takes ``weight`` of the invocations (revision 0007).
    additional_version: str | None = None
    weight: float = 0.0
    # When ``alias set`` last moved it; None while it follows deploys (``live`` only).
    pinned_at: float | None = None
    # The automatic rollback rule (``RollbackRule.to_json``) and the last rollback made.
    rollback: dict[str, Any] | None = None
    rolled_back: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class TriggerRecord:
    id: str  # the consumer group id: "{function}.{trigger name}"
    function: str
    topic: str
    qualifier: str = LIVE  # the alias or version the trigger invokes
    config: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0


@dataclass(frozen=True, slots=True)
class ChainEvent:
    """An event of a chain, as ``store/chains.py`` keeps it: ``invocation`` is the id of
    the invocation that emitted it, None for an event that came from outside."""

    correlation: str  # the id of the chain's first event
    id: str
    source: str
    topic: str
    type: str
    time: str | None = None
    invocation: str | None = None


@dataclass(slots=True)
class InvocationRecord:
    id: str  # time-sortable (``triggerfish.ids.new_id``)
    function: str
    version: str
    status: Status
    started_at: float
    trigger: str | None = None
    event_ids: tuple[str, ...] = ()
    attempt: int = 1
    duration_ms: float = 0.0
    billed_duration_ms: int = 0
    memory_size_mb: int = 0
    max_memory_used_mb: int = 0
    init_duration_ms: float | None = None
    cold_start: bool = False
    error_type: str | None = None
    error_message: str | None = None
    stack_trace: list[str] = field(default_factory=list)
    logs: str = ""
    result: bytes | None = None
    request_bytes: int = 0
    recorded_id: str = ""  # set when the record is written; the cursor of ``after``
    correlation: str | None = None  # the chain of the event handled (its correlationid)
    # The events handled and emitted, written with the record to the chain's events.
    events: tuple[ChainEvent, ...] = ()

    @classmethod
    def from_result(
        cls,
        result: InvocationResult,
        *,
        function: str,
        version: str,
        trigger: str | None = None,
        event_ids: tuple[str, ...] = (),
        attempt: int = 1,
        request_bytes: int = 0,
        id: str | None = None,
        correlation: str | None = None,
        events: tuple[ChainEvent, ...] = (),
    ) -> InvocationRecord:
        """The record of an executor's result (``id`` defaults to its request id)."""
        # Positional: passing 20 keywords costs more than the rest of the call.
        return cls(
            id if id is not None else result.request_id,
            function,
            version,
            result.status,
            result.started_at,
            trigger,
            tuple(event_ids),
            attempt,
            result.duration_ms,
            result.billed_duration_ms,
            result.memory_size_mb,
            result.max_memory_used_mb,
            result.init_duration_ms,
            result.cold_start,
            result.error_type,
            result.error_message,
            list(result.stack_trace),
            result.logs,
            result.result,
            request_bytes,
            "",
            correlation,
            events,
        )


@dataclass(frozen=True, slots=True)
class StoredToken:
    id: str
    name: str
    secret_hash: str  # never the secret itself
    scopes: tuple[str, ...]
    created_at: float
    revoked: bool = False
