"""What every broker source shares: options, the reconnect loop, counters, and the
rule that a broker's message is acknowledged only after its event is committed.

A ``BrokerSource`` runs one task for one trigger. ``consume`` (one per kind) connects,
calls ``connected``, then loops: take a batch of messages, ``commit`` them (convert and
publish to the trigger's topic in one bus commit), and only then acknowledge them to
the broker. When ``consume`` fails (the broker went away, a driver error) the loop logs
it, waits with exponential backoff (``backoff`` doubling up to ``max_backoff``, with
jitter) and connects again; a connection that worked resets the wait. ``stats`` gives
the counters of the source (connections, reconnects, messages received, published,
dropped) for metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import time
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from triggerfish.errors import AdapterError, ConfigError
from triggerfish.events.create import now_rfc3339
from triggerfish.events.model import Event
from triggerfish.sources.brokers.convert import Converter, DroppedMessage, Message
from triggerfish.sources.brokers.urls import check_scheme, expand_url, public_url, redact_url
from triggerfish.tasks import cancel_task

if TYPE_CHECKING:
    from triggerfish.sources.base import SourceContext

log = logging.getLogger("triggerfish.sources.brokers")


class BrokerOptions(BaseModel):
    """Options every broker kind takes (``kind`` and ``url`` are the trigger's)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str
    url: str
    type: str | None = Field(default=None, min_length=1)  # the events' type
    source: str | None = Field(default=None, min_length=1)  # the events' source
    format: Literal["raw", "cloudevent"] = "raw"
    batch: int = Field(default=100, ge=1, le=10000)  # most messages per bus commit
    backoff: float = Field(default=0.5, gt=0, le=60)  # first wait before reconnecting
    max_backoff: float = Field(default=30.0, gt=0, le=3600)


OptionsT = TypeVar("OptionsT", bound=BrokerOptions)


def safe_name(value: str, *, extra: str = "") -> str:
    """``value`` with every character outside letters, digits, ``-``, ``_`` and
    ``extra`` turned into ``_`` (for durable consumer names, client ids ...)."""
    return re.sub(rf"[^A-Za-z0-9_\-{re.escape(extra)}]", "_", value)


def require(module: str, extra: str = "brokers") -> Any:
    """Import a broker driver on first use, with an install hint when it is missing."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(
            f"this source needs the Python package behind {module!r}: "
            f"pip install 'triggerfish[{extra}]'"
        ) from exc


def backoff_delay(backoff: float, max_backoff: float, failures: int) -> float:
    """Seconds to wait after ``failures`` failures in a row (0 for the first wait):
    ``backoff`` doubling up to ``max_backoff``, with jitter down to half of it."""
    ceiling: float = min(max_backoff, backoff * 2**failures)
    return ceiling * random.uniform(0.5, 1.0)


class EventSink(Protocol):
    """Where a broker source commits its events: the bus, or (in the source process)
    the link that has the node commit them. Returns once the events are durable."""

    async def publish(self, topic: str, events: Sequence[Event]) -> object: ...


@dataclass(frozen=True, slots=True)
class BrokerContext:
    """What a broker source needs of its trigger: a ``SourceContext`` without the store,
    and with any ``EventSink`` for a bus."""

    trigger_id: str
    topic: str
    options: Mapping[str, Any]
    config: Mapping[str, Any]
    bus: EventSink
    data_dir: Path

    @classmethod
    def of(cls, context: SourceContext) -> BrokerContext:
        return cls(
            context.trigger_id,
            context.topic,
            context.options,
            context.config,
            context.bus,
            context.data_dir,
        )


@dataclass(slots=True)
class SourceStats:
    kind: str
    trigger: str
    url: str  # redacted
    connected: bool = False
    connections: int = 0
    reconnects: int = 0  # failures followed by a wait and a new attempt
    received: int = 0  # messages taken from the broker (redeliveries count again)
    published: int = 0  # events committed to the bus
    dropped: int = 0  # messages that could not become events
    last_error: str = ""
    last_message_at: float = 0.0


class BrokerSource(Generic[OptionsT]):
    kind: ClassVar[str]
    default_type: ClassVar[str]

    def __init__(self, context: BrokerContext, options: OptionsT) -> None:
        self.context = context
        self.options = options
        self.url = expand_url(options.url, where=f"trigger {context.trigger_id}: source.url")
        self.shown_url = redact_url(options.url)
        self.converter = Converter(
            source=options.source or self.event_source(),
            event_type=options.type or self.default_type,
            structured=options.format == "cloudevent",
        )
        self._stats = SourceStats(self.kind, context.trigger_id, self.shown_url)
        self._task: asyncio.Task[None] | None = None
        self._healthy = False

    # -- what each kind provides ------------------------------------------------------

    def resource(self) -> str:
        """What is consumed, appended to the URL in the events' default ``source``."""
        return ""

    async def consume(self) -> None:
        """Connect, call ``connected``, then take, commit and acknowledge messages
        until the connection fails (raise) or the task is cancelled."""
        raise NotImplementedError

    # -- shared ---------------------------------------------------------------------

    def event_source(self) -> str:
        base = public_url(self.url)
        resource = self.resource()
        return f"{base}/{resource}" if resource else base

    def stats(self) -> dict[str, Any]:
        """The source's counters: kind, trigger, url (redacted), connected, connections,
        reconnects, received, published, dropped, last_error, last_message_at."""
        return asdict(self._stats)

    def connected(self) -> None:
        self._stats.connected = True
        self._stats.connections += 1
        self._healthy = True
        log.info(
            "%s source of trigger %s connected to %s", self.kind, self.context.trigger_id,
            self.shown_url,
        )  # fmt: skip

    async def commit(self, messages: Sequence[Message]) -> list[bool]:
        """Turn ``messages`` into events and publish them in one bus commit. For each
        message: True once its event is durable, False when it was dropped (it cannot
        become an event). Raises when the bus fails: acknowledge nothing then."""
        events = []
        kept = []
        stamp = now_rfc3339()  # the events of one batch were taken at the same moment
        for message in messages:
            try:
                events.append(self.converter.event(message, time=stamp))
                kept.append(True)
            except DroppedMessage as exc:
                kept.append(False)
                self._stats.dropped += 1
                log.warning(
                    "%s source of trigger %s dropped a message on %r: %s", self.kind,
                    self.context.trigger_id, message.subject, exc,
                )  # fmt: skip
        self._stats.received += len(messages)
        self._stats.last_message_at = time.time()
        if events:
            await self.context.bus.publish(self.context.topic, events)
            self._stats.published += len(events)
        return kept

    async def start(self) -> None:
        self._task = asyncio.create_task(
            self._run(), name=f"{self.kind} source {self.context.trigger_id}"
        )

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_task(task)
        self._stats.connected = False

    async def _run(self) -> None:
        failures = 0
        while True:
            self._healthy = False
            try:
                await self.consume()
                raise AdapterError("the broker closed the connection")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._healthy:
                    failures = 0
                self._stats.connected = False
                self._stats.reconnects += 1
                self._stats.last_error = f"{type(exc).__name__}: {exc}"
                delay = backoff_delay(self.options.backoff, self.options.max_backoff, failures)
                failures += 1
                log.warning(
                    "%s source of trigger %s: %s at %s (%s); reconnecting in %.1f s "
                    "(attempt %d)", self.kind, self.context.trigger_id,
                    "connection lost" if self._healthy else "cannot connect", self.shown_url,
                    self._stats.last_error, delay, failures,
                )  # fmt: skip
                await asyncio.sleep(delay)


class BrokerKind(Generic[OptionsT]):
    """A ``SourceKind`` for one broker: checks options at deploy time, creates sources."""

    name: str  # the source kind, as in `source: {kind: ...}`
    #: Run in the node's source process (``triggerfish.sources.process``): kinds whose
    #: client decodes the broker's frames in Python at a cost like the dispatch's own.
    runs_apart: ClassVar[bool] = False
    schemes: ClassVar[tuple[str, ...]]
    options_model: ClassVar[type[BrokerOptions]]
    source_class: ClassVar[type[BrokerSource[Any]]]

    def parse(self, options: Mapping[str, Any], *, where: str) -> OptionsT:
        try:
            parsed = self.options_model.model_validate(dict(options))
        except PydanticValidationError as exc:
            error = exc.errors()[0]
            loc = ".".join(str(part) for part in error["loc"])
            raise ConfigError(f"{where}.{loc}: {error['msg']}") from None
        url = expand_url(parsed.url, where=f"{where}.url")
        check_scheme(url, self.schemes, where=f"{where}.url")
        self.check(parsed, where=where)  # type: ignore[arg-type]
        return parsed  # type: ignore[return-value]

    def check(self, options: OptionsT, *, where: str) -> None:
        """Rules across options, beyond their types; raise ConfigError."""

    def validate(self, options: Mapping[str, Any], *, where: str) -> None:
        self.parse(options, where=where)

    def one_per_cluster(self, options: Mapping[str, Any]) -> bool:
        """Whether only one node of a cluster may run a trigger with these options:
        those whose broker would give every node each message (see each kind)."""
        return False

    def create(self, context: SourceContext) -> BrokerSource[Any]:
        return self.create_for(BrokerContext.of(context))

    def create_for(self, context: BrokerContext) -> BrokerSource[Any]:
        options = self.parse(context.options, where=f"trigger {context.trigger_id}: source")
        return self.source_class(context, options)


async def take(queue: asyncio.Queue[Any], limit: int) -> list[Any]:
    """Wait for one item of ``queue``, then take what else is there, up to ``limit``."""
    items = [await queue.get()]
    while len(items) < limit and not queue.empty():
        items.append(queue.get_nowait())
    return items


#: Seconds a stopping source gives the batch in hand to be committed and acknowledged:
#: less than the last third of the default leader lease (5 s), which a leader-only
#: source has to stop in once its node gave up the lead. A commit takes milliseconds.
FINISH_WITHIN = 1.0


class Overlap:
    """Lets a consume loop read its next batch from the broker while the previous one
    is committed to the bus and acknowledged: at most one batch in hand, and batches
    committed in the order they were read. ``submit`` waits for the batch before (and
    raises its error), so a failed commit stops the loop before anything later is
    acknowledged. Leaving the block on an error cancels the batch in hand: it was not
    acknowledged, so its broker delivers it again. Leaving it on a cancel (the source
    stops: a node stopping, or a leader-only source on a node that lost the lead) lets
    the batch in hand finish for up to ``FINISH_WITHIN`` seconds first: once committed,
    it is acknowledged too, rather than delivered again to the next consumer and
    handled twice.

    ``async with Overlap() as overlap: ... await overlap.submit(self.handle(batch))``
    """

    def __init__(self) -> None:
        self._task: asyncio.Task[Any] | None = None

    async def submit(self, work: Coroutine[Any, Any, Any]) -> None:
        try:
            await self.drain()
        except BaseException:
            work.close()
            raise
        self._task = asyncio.create_task(work)

    async def drain(self) -> None:
        """Wait until the batch in hand is committed and acknowledged."""
        task = self._task
        if task is not None:
            # Shielded: a stop that comes meanwhile leaves the batch to ``__aexit__``,
            # which lets it finish, rather than cancelling it through this wait.
            await asyncio.shield(task)
            self._task = None

    async def __aenter__(self) -> Overlap:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if kind is None:
            await self.drain()
            return
        task, self._task = self._task, None
        if task is None:
            return
        try:
            if issubclass(kind, asyncio.CancelledError):
                await asyncio.wait({task}, timeout=FINISH_WITHIN)
        finally:
            task.cancel()  # nothing when it finished
            with contextlib.suppress(BaseException):
                await task
