"""Topics and their events: create, delete, read, publish; replay into a trigger;
dead-letter topics read and redriven.

Publishing is the ingest path (``POST /v1/topics/{t}/events``, webhooks): it goes to the
bus in one call, with nothing around it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from triggerfish.bus.base import Bus, GroupInfo, PublishResult, StoredEvent, TopicInfo
from triggerfish.bus.names import check_topic_name
from triggerfish.dispatch.dispatcher import Dispatcher
from triggerfish.errors import NotFoundError
from triggerfish.events.model import Event

RATE_WINDOW = 60.0  # seconds: a topic's rate is over the last minute


@dataclass(frozen=True, slots=True)
class DeadLetters:
    """A dead-letter topic: how many events wait to be redriven, and the first of them."""

    topic: str
    pending: int
    events: list[StoredEvent]


class Topics:
    def __init__(
        self, bus: Bus, dispatcher: Dispatcher, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._bus = bus
        self._dispatcher = dispatcher
        self._clock = clock

    async def all(self) -> list[TopicInfo]:
        """Every topic, internal ones (``_...``) included."""
        return await self._bus.topics()

    async def info(self, name: str) -> TopicInfo:
        return await self._bus.topic(name)

    async def rate(self, info: TopicInfo, *, window: float = RATE_WINDOW) -> float:
        """Events published to the topic of ``info`` per second over the last ``window``
        seconds: offsets are consecutive, so it is the first offset of the window up to
        the last, one read of one event whatever the rate."""
        if info.last_offset is None:
            return 0.0
        first = await self._bus.read(info.name, since=self._clock() - window, limit=1)
        if not first:
            return 0.0
        return max(0, info.last_offset - first[0].offset + 1) / window

    async def groups(self, name: str | None = None) -> list[GroupInfo]:
        """The consumer groups (triggers, relays, redrive) of one topic, or of all."""
        return await self._bus.groups(name)

    async def create(self, name: str, *, retention: float | None) -> None:
        """Create a topic, or set the retention of the one of that name."""
        check_topic_name(name)
        await self._bus.create_topic(name, retention=retention)

    async def delete(self, name: str) -> None:
        await self._bus.delete_topic(name)

    async def read(
        self, name: str, *, after: int = 0, since: float | None = None, limit: int = 100
    ) -> list[StoredEvent]:
        return await self._bus.read(name, after=after, since=since, limit=limit)

    async def publish(self, name: str, events: Sequence[Event]) -> list[PublishResult]:
        """Append ``events`` to the topic: durable once this returns."""
        return await self._bus.publish(name, events)

    async def replay(
        self, topic: str, trigger: str, *, offset: int | None, since: float | None
    ) -> int:
        """Deliver again to ``trigger`` the events of ``topic`` from ``offset`` or
        ``since``; how many that re-queues."""
        sub = self._dispatcher.subscription(trigger)
        if sub is None or sub.topic != topic:
            raise NotFoundError(
                f"no trigger {trigger!r} on topic {topic!r}; `triggerfish ls` lists triggers"
            )
        return await self._bus.seek(topic, trigger, offset=offset, since=since)

    async def dead_letters(self, topic: str | None, *, limit: int) -> list[DeadLetters]:
        """Dead-letter topics (of every trigger, or ``topic`` alone) with the events not
        yet redriven, at most ``limit`` each."""
        out = []
        for name in self._dead_letter_topics(topic):
            pending, items = await self._dispatcher.redrives.pending(name, limit=limit)
            out.append(DeadLetters(name, pending, items))
        return out

    async def redrive(self, topic: str, *, limit: int) -> tuple[int, int]:
        """Feed the events of a dead-letter topic back into the triggers they failed in:
        (redriven, skipped), skipped when their trigger no longer exists."""
        return await self._dispatcher.redrive(topic, limit=limit)

    async def redrive_event(self, topic: str, event_id: str) -> tuple[int, int]:
        """Feed one dead-lettered event back into the trigger it failed in, as
        ``redrive`` does; the others stay. NotFoundError when none of that id waits."""
        (name,) = self._dead_letter_topics(topic)
        return await self._dispatcher.redrive_event(name, event_id)

    def _dead_letter_topics(self, topic: str | None) -> list[str]:
        topics = sorted({s.dead_letter_topic for s in self._dispatcher.subscriptions})
        if topic is None:
            return topics
        if topic not in topics:
            raise NotFoundError(f"{topic!r} is not the dead-letter topic of any trigger")
        return [topic]
