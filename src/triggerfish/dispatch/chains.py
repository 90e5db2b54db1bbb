"""What an invocation records of the chain it belongs to (``store/chains.py``): the
chain's id, and the events it handled and emitted with their topics.

An event without ``correlationid`` is the first of its chain: its own id names it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from triggerfish.bus.base import Delivery
from triggerfish.events.model import Event
from triggerfish.store.records import ChainEvent


def correlation_of(event: Event) -> str:
    chain = event.extensions.get("correlationid")
    return chain if isinstance(chain, str) and chain else event.id


def recorded(event: Event, shown: bool) -> str | None:
    """The chain an invocation's record names: the event's when it carries one (a later
    step of a chain), its own id when ``shown`` (the invocation failed, or emitted and
    so starts a chain); None for a lone first step, found by its event instead
    (``store/chains.py``)."""
    chain = event.extensions.get("correlationid")
    if isinstance(chain, str) and chain:
        return chain
    return event.id if shown else None


def handled(deliveries: Sequence[Delivery], topic: str) -> list[ChainEvent]:
    return [_chain_event(d.event, topic, None) for d in deliveries]


def emitted(invocation: str, published: Iterable[tuple[str, Event]]) -> list[ChainEvent]:
    """``published``: each event with the topic (or ``<broker>:<address>``) it went to."""
    return [_chain_event(event, topic, invocation) for topic, event in published]


def _chain_event(event: Event, topic: str, invocation: str | None) -> ChainEvent:
    return ChainEvent(
        correlation=correlation_of(event),
        id=event.id,
        source=event.source,
        topic=topic,
        type=event.type,
        time=event.time,
        invocation=invocation,
    )
