"""Topics and their events: create, delete, read, publish; replay into a trigger;
dead-letter topics read and redriven.

Publishing is the ingest path (``POST /v1/topics/{t}/events``, webhooks): it goes to the
bus in one call, with nothing around it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from triggerfish.bus.base import Bus, GroupInfo, PublishResult, StoredEvent, TopicInfo
from triggerfish.bus.names import check_topic_name
from triggerfish.dispatch.dispatcher import REDRIVE_GROUP, Dispatcher
from triggerfish.errors import NotFoundError
from triggerfish.events.model import Event


@dataclass(frozen=True, slots=True)
class DeadLetters:
    """A dead-letter topic: how many events wait to be redriven, and the first of them."""

    topic: str
    pending: int
    events: list[StoredEvent]


class Topics:
    def __init__(self, bus: Bus, dispatcher: Dispatcher) -> None:
        self._bus = bus
        self._dispatcher = dispatcher

    async def all(self) -> list[TopicInfo]:
        """Every topic, internal ones (``_...``) included."""
        return await self._bus.topics()

    async def info(self, name: str) -> TopicInfo:
        return await self._bus.topic(name)

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
        topics = sorted({s.dead_letter_topic for s in self._dispatcher.subscriptions})
        if topic is not None:
            if topic not in topics:
                raise NotFoundError(f"{topic!r} is not the dead-letter topic of any trigger")
            topics = [topic]
        groups = {g.topic: g for g in await self._bus.groups() if g.group == REDRIVE_GROUP}
        out = []
        for name in topics:
            group = groups.get(name)
            cursor = group.cursor if group else 0
            items = await self._bus.read(name, after=cursor, limit=limit)
            out.append(DeadLetters(name, group.backlog if group else len(items), items))
        return out

    async def redrive(self, topic: str, *, limit: int) -> tuple[int, int]:
        """Feed the events of a dead-letter topic back into the triggers they failed in:
        (redriven, skipped), skipped when their trigger no longer exists."""
        return await self._dispatcher.redrive(topic, limit=limit)
