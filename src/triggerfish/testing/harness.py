"""The delivery core in one process: the real ``TriggerRunner`` per trigger, the memory
bus, a real SQLite store for the invocation records, an executor given by the caller,
and a manual clock, all on a ``ManualLoop`` in a thread of their own.

Every rule is the runner's own (patterns, batches, retries with backoff, ``max_age``,
dead letters and their error extensions, batch item failures, emits made durable before
the acknowledgement); the harness only feeds events in, moves the clock, and reads
what came out. Each synchronous call returns once everything due has run.
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from triggerfish.bus.base import Bus, GroupInfo, StoredEvent
from triggerfish.bus.memory import MemoryBus
from triggerfish.clock import ManualClock
from triggerfish.dispatch.emitter import Emitter
from triggerfish.dispatch.invoker import Invoker
from triggerfish.dispatch.policy import Subscription
from triggerfish.dispatch.runner import LEASE_MARGIN, TriggerRunner
from triggerfish.errors import NotFoundError
from triggerfish.events.create import new_event
from triggerfish.events.model import Event, ExtensionValue
from triggerfish.functions.brokers import Destinations
from triggerfish.observe.recorder import Recorder
from triggerfish.runtime.base import Executor, FunctionSpec, InvocationResult, Status
from triggerfish.store.records import InvocationRecord
from triggerfish.store.sql import SqlStore
from triggerfish.testing.loop import LoopThread

TEST_SOURCE = "triggerfish://testing"
READ_PAGE = 1000


@dataclass(frozen=True, slots=True)
class InvocationError:
    type: str
    message: str
    stack_trace: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Invocation:
    """One invocation as a test sees it: ``events`` handled (one, or a batch),
    ``emitted`` the events it published (none unless it succeeded)."""

    id: str
    function: str
    trigger: str | None  # None for a direct invoke
    status: Status
    result: Any  # the handler's return value, decoded from JSON
    error: InvocationError | None
    attempt: int
    events: tuple[Event, ...]
    emitted: tuple[Event, ...]
    logs: str
    started_at: float
    correlation: str | None

    @property
    def event(self) -> Event | None:
        """The event handled (the first of a batch); None for a direct invoke."""
        return self.events[0] if self.events else None


class _KeepingRecorder(Recorder):
    """Writes records to the store as the node's does, and keeps them for the test."""

    def __init__(self, store: SqlStore) -> None:
        super().__init__(store)
        self.kept: list[InvocationRecord] = []

    def record(
        self, spec: FunctionSpec, result: InvocationResult, **kwargs: Any
    ) -> InvocationRecord:
        record = super().record(spec, result, **kwargs)
        self.kept.append(record)
        return record


class Harness:
    """``functions``: what each function name runs as; ``subscriptions``: the triggers;
    ``topics``: further topics (name to retention), e.g. those handlers emit to.
    ``rand``: the runners' random source (retry jitter). Use as a context manager."""

    def __init__(
        self,
        functions: Mapping[str, FunctionSpec],
        subscriptions: Sequence[Subscription],
        executor: Executor,
        *,
        topics: Mapping[str, float | None] | None = None,
        destinations: Mapping[str, Destinations] | None = None,
        clock: ManualClock | None = None,
        rand: random.Random | None = None,
        lease_margin: float = LEASE_MARGIN,
    ) -> None:
        self.functions = dict(functions)
        self.subscriptions = list(subscriptions)
        self.executor = executor
        self.clock = clock or ManualClock()
        self._topics = dict(topics or {})
        self._destinations = dict(destinations or {})
        self._rand = rand
        self._lease_margin = lease_margin
        self._thread: LoopThread | None = None
        self._folder: tempfile.TemporaryDirectory[str] | None = None
        self._runners: list[TriggerRunner] = []

    # -- lifecycle ----------------------------------------------------------------------

    def __enter__(self) -> Harness:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="triggerfish-testing-")
        self._thread = LoopThread(self.clock)
        try:
            self._thread.call(self._start(Path(self._folder.name)))
        except BaseException:
            self.close()
            raise

    async def _start(self, folder: Path) -> None:
        clock = self.clock
        self.bus: Bus = MemoryBus(clock=clock.time)
        self.store = SqlStore(f"sqlite+aiosqlite:///{folder / 'store.db'}", clock=clock.time)
        await self.store.start()
        # Not started: records are written when the harness closes, not by a timer that
        # each move of the clock would wake.
        self.recorder = _KeepingRecorder(self.store)
        self.emitter = Emitter(self.bus, destinations_of=self._destinations_of)
        self.invoker = Invoker(
            self.bus, self.executor, resolve=self._resolve, recorder=self.recorder,
            emitter=self.emitter,
        )  # fmt: skip
        await self.executor.start()
        wanted = dict(self._topics)
        for sub in self.subscriptions:
            for topic in (sub.topic, sub.dead_letter_topic, sub.redrive_topic):
                wanted.setdefault(topic, None)
        for topic, retention in wanted.items():
            await self.bus.create_topic(topic, retention=retention)
        for sub in self.subscriptions:
            runner = TriggerRunner(
                sub,
                self.bus,
                self.executor,
                resolve=self._resolve,
                recorder=self.recorder,
                emitter=self.emitter,
                rand=self._rand,
                lease_margin=self._lease_margin,
                clock=clock,
            )
            await runner.start()
            self._runners.append(runner)

    def close(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            try:
                thread.call(self._stop())
            finally:
                thread.close()
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None

    async def _stop(self) -> None:
        for runner in self._runners:
            await runner.stop(grace=0.0)
        self._runners.clear()
        await self.executor.stop(grace=0.0)
        if hasattr(self, "store"):
            await self.recorder.stop()
            await self.store.stop()

    async def _resolve(self, function: str, qualifier: str) -> FunctionSpec:
        spec = self.functions.get(function)
        if spec is None:
            known = ", ".join(sorted(self.functions)) or "none"
            raise NotFoundError(f"no function named {function!r} (functions: {known})")
        return spec

    def _destinations_of(self, spec: FunctionSpec) -> Destinations | None:
        return self._destinations.get(spec.function)

    def _call(self, coroutine: Any) -> Any:
        if self._thread is None:
            raise RuntimeError("the harness is not running: use it in a `with` block")
        return self._thread.call(coroutine)

    # -- driving ------------------------------------------------------------------------

    def publish(
        self,
        topic: str,
        *,
        type: str,
        data: Any = None,
        source: str = TEST_SOURCE,
        subject: str | None = None,
        id: str | None = None,
        **extensions: ExtensionValue,
    ) -> Event:
        """Publish an event on ``topic``; returns once every trigger it reaches is done
        with it (or waits for the clock: a retry, a lease)."""
        event = new_event(type, source, data, subject=subject, id=id, extensions=extensions)
        self.publish_events(topic, [event])
        return event

    def publish_events(self, topic: str, events: Sequence[Event]) -> None:
        self._call(self._publish(topic, events))

    async def _publish(self, topic: str, events: Sequence[Event]) -> None:
        try:
            await self.bus.publish(topic, events)
        except NotFoundError:
            known = ", ".join(sorted(t.name for t in await self.bus.topics()))
            raise NotFoundError(
                f"no topic {topic!r} here (topics: {known}); declare it under 'topics:' or"
                " in a trigger"
            ) from None

    def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` forward, running what comes due on the way, in
        order (retries, leases that end, acknowledgement windows)."""
        if self._thread is None:
            raise RuntimeError("the harness is not running: use it in a `with` block")
        self._thread.advance(seconds)

    def invoke(self, function: str, payload: Any = None) -> Invocation:
        """Invoke ``function`` directly with ``payload`` (any JSON value), as
        ``triggerfish invoke`` does: no retry, no trigger."""
        body = orjson.dumps(payload)
        result: InvocationResult = self._call(self.invoker.invoke(function, body))
        (found,) = [r for r in self.recorder.kept if r.id == result.request_id]
        invocations: list[Invocation] = self._call(self._invocations([found]))
        return invocations[0]

    def run(self, call: Callable[[], Any]) -> Any:
        """Await ``call()`` in the harness's loop (to reach the bus or the store)."""

        async def run() -> Any:
            return await call()

        return self._call(run())

    # -- reading ------------------------------------------------------------------------

    def invocations(self, function: str | None = None) -> list[Invocation]:
        """The invocations of ``function`` (of every function when None), oldest first."""
        records = [r for r in self.recorder.kept if function is None or r.function == function]
        if function is not None and function not in self.functions:
            known = ", ".join(sorted(self.functions)) or "none"
            raise NotFoundError(f"no function named {function!r} (functions: {known})")
        result: list[Invocation] = self._call(self._invocations(records))
        return result

    def events(self, topic: str) -> list[Event]:
        """Every event of ``topic``, in the order the bus took them."""
        return [stored.event for stored in self._call(self._read(topic))]

    def emitted(self, topic: str) -> list[Event]:
        """The events that functions emitted on ``topic``, in order."""
        ids = {
            e.id
            for r in self.recorder.kept
            for e in r.events
            if e.invocation == r.id and e.topic == topic
        }
        return [event for event in self.events(topic) if event.id in ids]

    def dead_letters(self, topic: str) -> list[Event]:
        """The events dead-lettered to ``topic``, with their ``error*`` extensions."""
        return self.events(topic)

    def chain(self, event: Event | str) -> list[Event]:
        """The events of the chain ``event`` started or belongs to, in publish order
        (an event emitted while handling another carries its ``correlationid``)."""
        first = event if isinstance(event, str) else event.extensions.get("correlationid", event.id)
        stored: list[StoredEvent] = self._call(self._read_all())
        seen: set[str] = set()
        out: list[Event] = []
        for item in sorted(stored, key=lambda s: s.published_at):
            e = item.event
            if (e.id == first or e.extensions.get("correlationid") == first) and e.id not in seen:
                seen.add(e.id)
                out.append(e)
        return out

    def groups(self, topic: str | None = None) -> list[GroupInfo]:
        """The bus's view of the triggers' consumer groups (backlog, leased, waiting)."""
        result: list[GroupInfo] = self._call(self.bus.groups(topic))
        return result

    async def _read(self, topic: str) -> list[StoredEvent]:
        out: list[StoredEvent] = []
        try:
            while True:
                after = out[-1].offset if out else 0
                page = await self.bus.read(topic, after=after, limit=READ_PAGE)
                out += page
                if len(page) < READ_PAGE:
                    return out
        except NotFoundError:
            known = ", ".join(sorted(t.name for t in await self.bus.topics()))
            raise NotFoundError(f"no topic {topic!r} here (topics: {known})") from None

    async def _read_all(self) -> list[StoredEvent]:
        out: list[StoredEvent] = []
        for info in await self.bus.topics():
            out += await self._read(info.name)
        return out

    async def _invocations(self, records: Iterable[InvocationRecord]) -> list[Invocation]:
        # An event as it came, not its dead-letter copy (same id, error extensions).
        by_id: dict[str, Event] = {}
        stored_events = await self._read_all()
        stored_events.sort(key=lambda s: ("errortype" in s.event.extensions, s.published_at))
        for stored in stored_events:
            by_id.setdefault(stored.event.id, stored.event)
        out: list[Invocation] = []
        for r in records:
            error = None
            if r.status != "ok":
                error = InvocationError(
                    r.error_type or r.status, r.error_message or "", tuple(r.stack_trace)
                )
            out.append(
                Invocation(
                    id=r.id,
                    function=r.function,
                    trigger=r.trigger,
                    status=r.status,
                    result=orjson.loads(r.result) if r.result else None,
                    error=error,
                    attempt=r.attempt,
                    events=tuple(by_id[i] for i in r.event_ids if i in by_id),
                    emitted=tuple(
                        by_id[e.id] for e in r.events if e.invocation == r.id and e.id in by_id
                    ),
                    logs=r.logs,
                    started_at=r.started_at,
                    correlation=r.correlation,
                )
            )
        return out
