"""The Bus protocol: durable topics, consumer groups, leases, retries and replay.

A topic is an append-only log of events; each event gets an increasing ``offset``.
A consumer group (one per trigger) reads a topic from its own cursor. ``fetch`` leases
events to the caller for ``lease`` seconds: an event that is neither acknowledged nor
released before its lease ends is delivered again (with ``attempt`` increased), which is
how a crashed consumer loses nothing. ``nack`` puts an event back with a delay (the retry
backoff); ``ack`` removes it from the group for good.

Publishing is idempotent on ``(topic, source, id)`` within the dedupe window: a second
publish of the same pair stores nothing and reports ``duplicate=True``.

Every implementation passes ``tests/contract/bus`` unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from triggerfish.events.model import Event

StartPosition = Literal["earliest", "latest"]


@dataclass(frozen=True, slots=True)
class PublishResult:
    id: str
    source: str
    offset: int  # the offset of the stored event (of the original one when duplicate)
    duplicate: bool


@dataclass(frozen=True, slots=True)
class Delivery:
    topic: str
    group: str
    offset: int
    event: Event
    attempt: int  # 1 on first delivery
    published_at: float  # unix seconds when the bus accepted the event
    lease_until: float  # unix seconds


@dataclass(frozen=True, slots=True)
class StoredEvent:
    topic: str
    offset: int
    event: Event
    published_at: float


@dataclass(frozen=True, slots=True)
class TopicInfo:
    name: str
    retention: float | None  # seconds; None keeps events forever
    first_offset: int | None
    last_offset: int | None
    count: int


@dataclass(frozen=True, slots=True)
class GroupInfo:
    topic: str
    group: str
    cursor: int  # highest offset handed out to the group
    backlog: int  # events not yet handed out
    in_flight: int  # leased, not yet acknowledged
    waiting_retry: int  # released with a delay, not yet due


@runtime_checkable
class Bus(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def create_topic(self, name: str, *, retention: float | None = None) -> None:
        """Create ``name``, or update its retention; idempotent."""

    async def delete_topic(self, name: str) -> None:
        """Delete a topic, its events and its groups; NotFoundError if unknown."""

    async def topics(self) -> list[TopicInfo]: ...

    async def topic(self, name: str) -> TopicInfo:
        """NotFoundError if the topic does not exist."""

    async def publish(
        self, topic: str, events: Sequence[Event], *, dedupe: bool = True
    ) -> list[PublishResult]:
        """Append durably (committed when this returns); NotFoundError on an unknown topic.
        ``dedupe=False`` stores events again even when their (source, id) was seen (the
        dead-letter and redrive paths, which must keep the original id)."""

    async def subscribe(self, topic: str, group: str, *, start: StartPosition = "latest") -> None:
        """Create the consumer group if it does not exist; idempotent."""

    async def unsubscribe(self, topic: str, group: str) -> None: ...

    async def groups(self, topic: str | None = None) -> list[GroupInfo]: ...

    async def fetch(
        self, topic: str, group: str, *, max_count: int, lease: float, wait: float = 0.0
    ) -> list[Delivery]:
        """Lease up to ``max_count`` due events, retries first; wait up to ``wait`` seconds
        for one to be available. Returns an empty list when none is. Arguments that make
        no sense (``max_count`` < 1, a lease that is not positive, a negative wait) raise
        ValidationError."""

    async def ack(self, topic: str, group: str, offsets: Sequence[int]) -> None: ...

    async def nack(self, topic: str, group: str, offset: int, *, delay: float) -> None:
        """Release a leased event to be delivered again after ``delay`` seconds."""

    async def extend(self, topic: str, group: str, offsets: Sequence[int], lease: float) -> None:
        """Push back the lease of events still being worked on."""

    async def read(
        self, topic: str, *, after: int = 0, since: float | None = None, limit: int = 100
    ) -> list[StoredEvent]:
        """Events of a topic in offset order, after ``after`` or published at/after ``since``."""

    async def seek(
        self, topic: str, group: str, *, offset: int | None = None, since: float | None = None
    ) -> int:
        """Replay: move the group's cursor so it receives again every event from ``offset``
        (inclusive) or published at/after ``since``. Returns how many events that re-queues."""

    async def trim(self) -> int:
        """Apply retention (and forget expired dedupe keys); returns events removed."""
