"""Contract: replay with ``seek`` and retention with ``trim``, for every Bus."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from triggerfish.bus.base import Bus
from triggerfish.errors import ValidationError
from triggerfish.events.model import Event

if TYPE_CHECKING:
    from conftest import ManualClock


def event(n: int) -> Event:
    return Event(id=f"evt-{n}", source="/shop", type="order.created", data=f"{n}".encode())


async def consume_all(bus: Bus, topic: str, group: str) -> list[str]:
    got = await bus.fetch(topic, group, max_count=100, lease=30)
    await bus.ack(topic, group, [d.offset for d in got])
    return [d.event.id for d in got]


async def test_seek_by_offset_delivers_again_from_that_offset(bus: Bus, topic: str) -> None:
    await bus.subscribe(topic, "g")
    results = await bus.publish(topic, [event(n) for n in range(1, 6)])
    assert len(await consume_all(bus, topic, "g")) == 5

    requeued = await bus.seek(topic, "g", offset=results[2].offset)

    assert requeued == 3
    replayed = await bus.fetch(topic, "g", max_count=100, lease=30)
    assert [d.event.id for d in replayed] == ["evt-3", "evt-4", "evt-5"]
    assert [d.attempt for d in replayed] == [1, 1, 1]


async def test_seek_by_time_delivers_events_published_since(
    clock: ManualClock, bus: Bus, topic: str
) -> None:
    await bus.subscribe(topic, "g")
    await bus.publish(topic, [event(1), event(2)])
    clock.advance(60)
    await bus.publish(topic, [event(3), event(4)])
    await consume_all(bus, topic, "g")

    requeued = await bus.seek(topic, "g", since=clock() - 30)

    assert requeued == 2
    assert await consume_all(bus, topic, "g") == ["evt-3", "evt-4"]


async def test_seek_since_the_future_skips_the_backlog(
    clock: ManualClock, bus: Bus, topic: str
) -> None:
    await bus.subscribe(topic, "g")
    await bus.publish(topic, [event(1), event(2)])

    assert await bus.seek(topic, "g", since=clock() + 60) == 0
    assert await bus.fetch(topic, "g", max_count=10, lease=30) == []
    await bus.publish(topic, [event(3)])
    assert await consume_all(bus, topic, "g") == ["evt-3"]


async def test_seek_replaces_in_flight_leases_it_covers(bus: Bus, topic: str) -> None:
    await bus.subscribe(topic, "g")
    results = await bus.publish(topic, [event(1), event(2)])
    await bus.fetch(topic, "g", max_count=10, lease=3600)

    await bus.seek(topic, "g", offset=results[0].offset)

    assert await consume_all(bus, topic, "g") == ["evt-1", "evt-2"]
    [info] = await bus.groups(topic)
    assert (info.in_flight, info.waiting_retry, info.backlog) == (0, 0, 0)


async def test_seek_needs_exactly_one_position(bus: Bus, topic: str) -> None:
    await bus.subscribe(topic, "g")
    with pytest.raises(ValidationError):
        await bus.seek(topic, "g")
    with pytest.raises(ValidationError):
        await bus.seek(topic, "g", offset=1, since=0.0)


async def test_trim_removes_events_past_retention(clock: ManualClock, bus: Bus, topic: str) -> None:
    await bus.create_topic(topic, retention=60)
    await bus.publish(topic, [event(1), event(2), event(3)])
    clock.advance(30)
    recent = await bus.publish(topic, [event(4), event(5)])
    clock.advance(40)

    assert await bus.trim() == 3

    assert [s.event.id for s in await bus.read(topic)] == ["evt-4", "evt-5"]
    info = await bus.topic(topic)
    assert (info.count, info.first_offset) == (2, recent[0].offset)
    assert await bus.trim() == 0


async def test_trim_keeps_events_a_group_still_holds(
    clock: ManualClock, bus: Bus, topic: str
) -> None:
    await bus.create_topic(topic, retention=60)
    await bus.subscribe(topic, "g")
    await bus.publish(topic, [event(1), event(2), event(3)])
    [held, done] = await bus.fetch(topic, "g", max_count=2, lease=3600)
    await bus.ack(topic, "g", [done.offset])
    clock.advance(120)

    assert await bus.trim() == 2  # evt-2 was acknowledged, evt-3 never handed out

    assert [s.event.id for s in await bus.read(topic)] == ["evt-1"]
    await bus.nack(topic, "g", held.offset, delay=0)
    [retry] = await bus.fetch(topic, "g", max_count=10, lease=30)
    assert (retry.event.id, retry.attempt) == ("evt-1", 2)


async def test_trim_leaves_topics_without_retention(
    clock: ManualClock, bus: Bus, topic: str
) -> None:
    await bus.publish(topic, [event(1)])
    clock.advance(10 * 365 * 86400)

    assert await bus.trim() == 0
    assert (await bus.topic(topic)).count == 1
