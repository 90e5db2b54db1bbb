"""MemoryBus: the Bus contract held in process memory, for tests and throwaway runs.

It keeps every promise of ``triggerfish.bus.base.Bus`` (offsets, consumer groups, leases,
delayed retries, replay, retention, dedupe) except durability: everything is gone when the
process ends. Time comes from the ``clock`` given to the constructor, so tests can move it.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from triggerfish.bus._common import (
    TopicSignals,
    check_fetch_arguments,
    check_retention,
    check_topic_name,
    unknown_group,
    unknown_topic,
    wait_for_deliveries,
)
from triggerfish.bus.base import (
    Delivery,
    GroupInfo,
    PublishResult,
    StartPosition,
    StoredEvent,
    TopicInfo,
)
from triggerfish.errors import ValidationError
from triggerfish.events.model import Event


@dataclass(slots=True)
class _Pending:
    attempt: int
    due: float  # lease end while leased, retry time once released
    leased: bool


@dataclass(slots=True)
class _Group:
    cursor: int
    pending: dict[int, _Pending] = field(default_factory=dict)


@dataclass(slots=True)
class _Topic:
    retention: float | None
    last_offset: int = 0
    last_published: float = float("-inf")
    offsets: list[int] = field(default_factory=list)  # stored offsets, ascending
    events: dict[int, tuple[float, Event]] = field(default_factory=dict)
    dedupe: dict[tuple[str, str], tuple[int, float]] = field(default_factory=dict)
    groups: dict[str, _Group] = field(default_factory=dict)


class MemoryBus:
    """An in-memory ``Bus``; ``dedupe_window`` is in seconds."""

    def __init__(
        self, *, dedupe_window: float = 86400.0, clock: Callable[[], float] = time.time
    ) -> None:
        self._dedupe_window = dedupe_window
        self._clock = clock
        self._topics: dict[str, _Topic] = {}
        self._signals = TopicSignals()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        self._signals.notify_all()

    async def __aenter__(self) -> MemoryBus:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- topics --------------------------------------------------------------------------

    def _topic(self, name: str) -> _Topic:
        topic = self._topics.get(name)
        if topic is None:
            raise unknown_topic(name)
        return topic

    def _group(self, topic: str, group: str) -> tuple[_Topic, _Group]:
        state = self._topic(topic)
        found = state.groups.get(group)
        if found is None:
            raise unknown_group(topic, group)
        return state, found

    async def create_topic(self, name: str, *, retention: float | None = None) -> None:
        check_topic_name(name)
        check_retention(retention)
        existing = self._topics.get(name)
        if existing is None:
            self._topics[name] = _Topic(retention=retention)
        else:
            existing.retention = retention

    async def delete_topic(self, name: str) -> None:
        self._topic(name)
        del self._topics[name]
        self._signals.notify(name)

    async def topics(self) -> list[TopicInfo]:
        return [self._info(name, state) for name, state in sorted(self._topics.items())]

    async def topic(self, name: str) -> TopicInfo:
        return self._info(name, self._topic(name))

    @staticmethod
    def _info(name: str, state: _Topic) -> TopicInfo:
        return TopicInfo(
            name=name,
            retention=state.retention,
            first_offset=state.offsets[0] if state.offsets else None,
            last_offset=state.offsets[-1] if state.offsets else None,
            count=len(state.offsets),
        )

    # -- publishing ----------------------------------------------------------------------

    async def publish(
        self, topic: str, events: Sequence[Event], *, dedupe: bool = True
    ) -> list[PublishResult]:
        """``dedupe=False`` stores every event even when its pair was seen (dead letters,
        redrives); the pair is still remembered for later publishes."""
        state = self._topic(topic)
        now = self._clock()
        results: list[PublishResult] = []
        for event in events:
            key = (event.source, event.id)
            seen = state.dedupe.get(key)
            if dedupe and seen is not None and seen[1] > now - self._dedupe_window:
                results.append(PublishResult(event.id, event.source, seen[0], duplicate=True))
                continue
            # Publish times never go backwards within a topic, so time and offset order agree.
            published_at = max(now, state.last_published)
            state.last_published = published_at
            state.last_offset += 1
            offset = state.last_offset
            state.offsets.append(offset)
            state.events[offset] = (published_at, event)
            state.dedupe[key] = (offset, published_at)
            results.append(PublishResult(event.id, event.source, offset, duplicate=False))
        if events:
            self._signals.notify(topic)
        return results

    async def read(
        self, topic: str, *, after: int = 0, since: float | None = None, limit: int = 100
    ) -> list[StoredEvent]:
        state = self._topic(topic)
        start = bisect.bisect_right(state.offsets, after)
        out: list[StoredEvent] = []
        for offset in state.offsets[start:]:
            if len(out) >= limit:
                break
            published_at, event = state.events[offset]
            if since is not None and published_at < since:
                continue
            out.append(StoredEvent(topic, offset, event, published_at))
        return out

    # -- consumer groups -----------------------------------------------------------------

    async def subscribe(self, topic: str, group: str, *, start: StartPosition = "latest") -> None:
        state = self._topic(topic)
        if group not in state.groups:
            state.groups[group] = _Group(cursor=state.last_offset if start == "latest" else 0)

    async def unsubscribe(self, topic: str, group: str) -> None:
        self._topic(topic).groups.pop(group, None)

    async def groups(self, topic: str | None = None) -> list[GroupInfo]:
        names = [topic] if topic is not None else sorted(self._topics)
        out: list[GroupInfo] = []
        for name in names:
            state = self._topic(name)
            for group_name, group in sorted(state.groups.items()):
                leased = sum(1 for p in group.pending.values() if p.leased)
                backlog = len(state.offsets) - bisect.bisect_right(state.offsets, group.cursor)
                out.append(
                    GroupInfo(
                        topic=name,
                        group=group_name,
                        cursor=group.cursor,
                        backlog=backlog,
                        in_flight=leased,
                        waiting_retry=len(group.pending) - leased,
                    )
                )
        return out

    async def fetch(
        self, topic: str, group: str, *, max_count: int, lease: float, wait: float = 0.0
    ) -> list[Delivery]:
        check_fetch_arguments(max_count, lease, wait)
        self._group(topic, group)

        async def once() -> tuple[list[Delivery], float | None]:
            return self._fetch_once(topic, group, max_count, lease)

        return await wait_for_deliveries(self._signals, topic, once, wait=wait, clock=self._clock)

    def _fetch_once(
        self, topic: str, group: str, max_count: int, lease: float
    ) -> tuple[list[Delivery], float | None]:
        state, found = self._group(topic, group)
        now = self._clock()
        until = now + lease
        out: list[Delivery] = []
        # Retries and expired leases first, earliest due first.
        due = sorted((p.due, o) for o, p in found.pending.items() if p.due <= now)
        for _, offset in due[:max_count]:
            pending = found.pending[offset]
            stored = state.events.get(offset)
            if stored is None:  # removed with its topic's history; nothing left to deliver
                del found.pending[offset]
                continue
            pending.attempt += 1
            pending.due = until
            pending.leased = True
            out.append(Delivery(topic, group, offset, stored[1], pending.attempt, stored[0], until))
        start = bisect.bisect_right(state.offsets, found.cursor)
        for offset in state.offsets[start : start + max_count - len(out)]:
            published_at, event = state.events[offset]
            found.pending[offset] = _Pending(attempt=1, due=until, leased=True)
            found.cursor = offset
            out.append(Delivery(topic, group, offset, event, 1, published_at, until))
        out.sort(key=lambda d: d.offset)
        next_due = min((p.due for p in found.pending.values()), default=None)
        return out, next_due

    async def ack(self, topic: str, group: str, offsets: Sequence[int]) -> None:
        _, found = self._group(topic, group)
        for offset in offsets:
            found.pending.pop(offset, None)

    async def nack(self, topic: str, group: str, offset: int, *, delay: float) -> None:
        if not delay >= 0:
            raise ValidationError(f"delay must be zero or more seconds, not {delay}", field="delay")
        _, found = self._group(topic, group)
        pending = found.pending.get(offset)
        if pending is not None:
            pending.due = self._clock() + delay
            pending.leased = False
            self._signals.notify(topic)

    async def extend(self, topic: str, group: str, offsets: Sequence[int], lease: float) -> None:
        check_fetch_arguments(1, lease, 0.0)
        _, found = self._group(topic, group)
        until = self._clock() + lease
        for offset in offsets:
            pending = found.pending.get(offset)
            if pending is not None and pending.leased:
                pending.due = until

    async def seek(
        self, topic: str, group: str, *, offset: int | None = None, since: float | None = None
    ) -> int:
        state, found = self._group(topic, group)
        if offset is not None and since is None:
            first = offset
        elif since is not None and offset is None:
            first = next(
                (o for o in state.offsets if state.events[o][0] >= since), state.last_offset + 1
            )
        else:
            raise ValidationError("seek needs exactly one of offset or since", field="offset")
        found.cursor = max(first - 1, 0)
        for pending_offset in [o for o in found.pending if o >= first]:
            del found.pending[pending_offset]
        self._signals.notify(topic)
        return len(state.offsets) - bisect.bisect_left(state.offsets, first)

    # -- retention -----------------------------------------------------------------------

    async def trim(self) -> int:
        now = self._clock()
        removed = 0
        for state in self._topics.values():
            horizon = now - self._dedupe_window
            expired = [k for k, (_, ts) in state.dedupe.items() if ts <= horizon]
            for key in expired:
                del state.dedupe[key]
            if state.retention is None:
                continue
            cutoff = now - state.retention
            held = {o for g in state.groups.values() for o in g.pending}
            keep: list[int] = []
            for offset in state.offsets:
                if state.events[offset][0] < cutoff and offset not in held:
                    del state.events[offset]
                    removed += 1
                else:
                    keep.append(offset)
            state.offsets = keep
        return removed
