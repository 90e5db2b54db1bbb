"""The chain of an event or an invocation: what it caused and what caused it, across
its whole correlation, as a graph of events and invocations.

Edges go from an event to each invocation that handled it, and from an invocation to
each event it emitted. A chain is bounded to ``limit`` nodes, the oldest first;
``truncated`` says that the store holds more of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from triggerfish.errors import NotFoundError
from triggerfish.store.chains import ChainStep
from triggerfish.store.records import ChainEvent
from triggerfish.store.sql import SqlStore

LIMIT = 500


@dataclass(frozen=True, slots=True)
class Chain:
    id: str  # what was asked for: an event id or an invocation id
    correlation: str | None  # the chain's first event id; None for a lone invocation
    events: list[ChainEvent]
    steps: list[ChainStep]
    edges: list[tuple[str, str]]  # (from, to): event -> invocation, invocation -> event
    truncated: bool


class Chains:
    def __init__(self, store: SqlStore) -> None:
        self._store = store

    async def get(self, id: str, *, limit: int = LIMIT) -> Chain:
        """The chain ``id`` belongs to; NotFoundError when the store knows no
        invocation and no event of a chain by that id."""
        found = await self._store.chains.correlation_of(id)
        if found is None:
            raise NotFoundError(
                f"no invocation and no event of a chain with id {id!r}; events show in "
                "a chain once an invocation that handled or emitted them is recorded"
            )
        correlation, step = found
        if correlation is None:
            assert step is not None
            return Chain(id, None, [], [step], [], False)
        rows = await self._store.chains.rows(correlation, limit=limit)
        steps = rows.steps
        events = await self._unkept(correlation, steps, rows.events) + rows.events
        truncated = rows.more or len(events) + len(steps) > limit
        if len(events) + len(steps) > limit:
            events, steps = _earliest(events, steps, limit)
        return Chain(id, correlation, events, steps, _edges(events, steps), truncated)

    async def _unkept(
        self, correlation: str, steps: list[ChainStep], events: list[ChainEvent]
    ) -> list[ChainEvent]:
        """The events ``steps`` handled that the chain does not keep: a first event
        whose invocations emitted nothing (the runner keeps the events of a chain that
        goes on only), with the topic of the trigger that handled it."""
        kept = {event.id for event in events}
        unkept: dict[str, ChainEvent] = {}
        topics: dict[str, str] = {}
        for step in steps:
            for event_id in step.event_ids:
                if event_id in kept or event_id in unkept:
                    continue
                topic = ""
                if step.trigger:
                    if step.trigger not in topics:
                        try:
                            topics[step.trigger] = (
                                await self._store.get_trigger(step.trigger)
                            ).topic
                        except NotFoundError:
                            topics[step.trigger] = ""
                    topic = topics[step.trigger]
                unkept[event_id] = ChainEvent(correlation, event_id, "", topic, "")
        return list(unkept.values())


def _edges(events: list[ChainEvent], steps: list[ChainStep]) -> list[tuple[str, str]]:
    known_events = {event.id for event in events}
    known_steps = {step.id for step in steps}
    edges = [
        (event_id, step.id)
        for step in steps
        for event_id in step.event_ids
        if event_id in known_events
    ]
    edges += [
        (event.invocation, event.id)
        for event in events
        if event.invocation is not None and event.invocation in known_steps
    ]
    return edges


def _earliest(
    events: list[ChainEvent], steps: list[ChainStep], limit: int
) -> tuple[list[ChainEvent], list[ChainStep]]:
    """The ``limit`` oldest of both, by time."""
    timed = [(event_time(event), 0, index) for index, event in enumerate(events)]
    timed += [(step.started_at, 1, index) for index, step in enumerate(steps)]
    kept = sorted(timed)[:limit]
    return (
        [events[index] for _, kind, index in sorted(kept, key=lambda k: k[2]) if kind == 0],
        [steps[index] for _, kind, index in sorted(kept, key=lambda k: k[2]) if kind == 1],
    )


def event_time(event: ChainEvent) -> float:
    """The event's ``time`` as Unix seconds; 0 when it has none or not RFC 3339."""
    if not event.time:
        return 0.0
    try:
        return datetime.fromisoformat(event.time.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0
