"""Contract: topics, publishing, dedupe, reading and errors, for every Bus."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING

import pytest

from triggerfish.bus.base import Bus
from triggerfish.errors import NotFoundError
from triggerfish.events.model import Event

if TYPE_CHECKING:
    from conftest import ManualClock


def event(n: int, *, source: str = "/shop", data: bytes | None = None) -> Event:
    return Event(
        id=f"evt-{n}",
        source=source,
        type="order.created",
        datacontenttype="application/json",
        data=data if data is not None else f'{{"n": {n}}}'.encode(),
        extensions={"partitionkey": f"p{n % 3}"},
    )


async def test_published_events_come_back_byte_for_byte_in_offset_order(
    bus: Bus, topic: str
) -> None:
    sent = [event(1), event(2, data=b"\x00\xffraw"), event(3)]
    results = await bus.publish(topic, sent)

    offsets = [r.offset for r in results]
    assert offsets == sorted(offsets)
    assert len(set(offsets)) == 3
    assert [(r.id, r.source, r.duplicate) for r in results] == [
        ("evt-1", "/shop", False),
        ("evt-2", "/shop", False),
        ("evt-3", "/shop", False),
    ]
    stored = await bus.read(topic)
    assert [s.event for s in stored] == sent
    assert [s.offset for s in stored] == offsets


async def test_publish_of_nothing_stores_nothing(bus: Bus, topic: str) -> None:
    assert await bus.publish(topic, []) == []
    assert (await bus.topic(topic)).count == 0


async def test_same_source_and_id_within_window_is_a_duplicate(bus: Bus, topic: str) -> None:
    [first] = await bus.publish(topic, [event(1)])
    [again] = await bus.publish(topic, [event(1, data=b'{"changed": true}')])

    assert again.duplicate is True
    assert again.offset == first.offset
    stored = await bus.read(topic)
    assert [s.event.data for s in stored] == [b'{"n": 1}']


async def test_duplicates_inside_one_batch_are_stored_once(bus: Bus, topic: str) -> None:
    results = await bus.publish(topic, [event(1), event(2), event(1)])

    assert [r.duplicate for r in results] == [False, False, True]
    assert results[2].offset == results[0].offset
    assert (await bus.topic(topic)).count == 2


async def test_publish_without_dedupe_stores_a_seen_pair_again(bus: Bus, topic: str) -> None:
    # ``dedupe=False`` is what dead-lettering and redrive use to store an event again.
    [first] = await bus.publish(topic, [event(1)])
    [forced] = await bus.publish(topic, [event(1)], dedupe=False)
    [again] = await bus.publish(topic, [event(1)])

    assert forced.duplicate is False
    assert forced.offset > first.offset
    assert again.duplicate is True
    assert (await bus.topic(topic)).count == 2


async def test_same_id_from_another_source_is_a_new_event(bus: Bus, topic: str) -> None:
    await bus.publish(topic, [event(1, source="/shop")])
    [other] = await bus.publish(topic, [event(1, source="/billing")])

    assert other.duplicate is False
    assert (await bus.topic(topic)).count == 2


async def test_dedupe_is_per_topic(bus: Bus, name: Callable[[str], str]) -> None:
    a, b = name("a"), name("b")
    await bus.create_topic(a)
    await bus.create_topic(b)
    await bus.publish(a, [event(1)])
    [on_b] = await bus.publish(b, [event(1)])

    assert on_b.duplicate is False


async def test_same_pair_after_the_window_is_a_new_event(
    clock: ManualClock, dedupe_window: float, bus: Bus, topic: str
) -> None:
    [first] = await bus.publish(topic, [event(1)])
    clock.advance(dedupe_window + 1)
    [later] = await bus.publish(topic, [event(1)])

    assert later.duplicate is False
    assert later.offset > first.offset
    assert (await bus.topic(topic)).count == 2


async def test_trim_forgets_expired_dedupe_keys_only(
    clock: ManualClock, dedupe_window: float, bus: Bus, topic: str
) -> None:
    await bus.publish(topic, [event(1)])
    clock.advance(dedupe_window / 2)
    await bus.publish(topic, [event(2)])
    clock.advance(dedupe_window / 2 + 1)
    await bus.trim()

    [one, two] = await bus.publish(topic, [event(1), event(2)])
    assert (one.duplicate, two.duplicate) == (False, True)


async def test_topics_are_isolated(bus: Bus, name: Callable[[str], str]) -> None:
    a, b = name("a"), name("b")
    await bus.create_topic(a)
    await bus.create_topic(b)
    await bus.subscribe(b, "g", start="earliest")
    await bus.publish(a, [event(1), event(2)])
    await bus.publish(b, [event(3)])

    got = await bus.fetch(b, "g", max_count=10, lease=30)
    assert [d.event.id for d in got] == ["evt-3"]
    assert [s.event.id for s in await bus.read(a)] == ["evt-1", "evt-2"]
    assert (await bus.topic(a)).count == 2
    assert (await bus.topic(b)).count == 1


async def test_read_pages_by_offset_and_filters_by_time(
    clock: ManualClock, bus: Bus, topic: str
) -> None:
    early = clock()
    await bus.publish(topic, [event(1), event(2), event(3)])
    clock.advance(60)
    await bus.publish(topic, [event(4)])

    page = await bus.read(topic, limit=2)
    assert [s.event.id for s in page] == ["evt-1", "evt-2"]
    rest = await bus.read(topic, after=page[-1].offset)
    assert [s.event.id for s in rest] == ["evt-3", "evt-4"]
    recent = await bus.read(topic, since=early + 30)
    assert [s.event.id for s in recent] == ["evt-4"]
    assert recent[0].published_at == pytest.approx(early + 60)


async def test_topic_info_and_listing(bus: Bus, name: Callable[[str], str]) -> None:
    a, b = name("a"), name("b")
    await bus.create_topic(a, retention=3600)
    await bus.create_topic(b)
    [first, _, last] = await bus.publish(a, [event(1), event(2), event(3)])

    info = await bus.topic(a)
    assert (info.name, info.retention, info.count) == (a, 3600, 3)
    assert (info.first_offset, info.last_offset) == (first.offset, last.offset)
    empty = await bus.topic(b)
    assert (empty.count, empty.first_offset, empty.last_offset) == (0, None, None)
    listed = {t.name for t in await bus.topics()}
    assert {a, b} <= listed


async def test_create_topic_is_idempotent_and_updates_retention(bus: Bus, topic: str) -> None:
    await bus.publish(topic, [event(1)])
    await bus.create_topic(topic, retention=60)

    info = await bus.topic(topic)
    assert (info.retention, info.count) == (60, 1)


async def test_deleted_topic_is_gone_with_its_groups(bus: Bus, topic: str) -> None:
    await bus.subscribe(topic, "g")
    await bus.publish(topic, [event(1)])
    await bus.delete_topic(topic)

    assert topic not in {t.name for t in await bus.topics()}
    assert all(g.topic != topic for g in await bus.groups())
    with pytest.raises(NotFoundError):
        await bus.fetch(topic, "g", max_count=1, lease=30)


@pytest.mark.parametrize(
    "call",
    [
        lambda bus, t: bus.publish(t, [event(1)]),
        lambda bus, t: bus.topic(t),
        lambda bus, t: bus.read(t),
        lambda bus, t: bus.delete_topic(t),
        lambda bus, t: bus.subscribe(t, "g"),
        lambda bus, t: bus.groups(t),
        lambda bus, t: bus.fetch(t, "g", max_count=1, lease=30),
        lambda bus, t: bus.ack(t, "g", [1]),
        lambda bus, t: bus.seek(t, "g", offset=1),
    ],
    ids=["publish", "topic", "read", "delete", "subscribe", "groups", "fetch", "ack", "seek"],
)
async def test_unknown_topic_is_named_with_how_to_create_it(
    bus: Bus, name: Callable[[str], str], call: Callable[[Bus, str], Awaitable[object]]
) -> None:
    missing = name("missing")
    with pytest.raises(NotFoundError) as caught:
        await call(bus, missing)

    message = str(caught.value)
    assert missing in message
    assert f"triggerfish topics create {missing}" in message
    assert "triggerfish.yaml" in message


async def test_unknown_group_on_a_known_topic_is_not_found(bus: Bus, topic: str) -> None:
    with pytest.raises(NotFoundError, match="nobody"):
        await bus.fetch(topic, "nobody", max_count=1, lease=30)
    with pytest.raises(NotFoundError, match="nobody"):
        await bus.ack(topic, "nobody", [1])


async def test_a_new_instance_sees_what_the_last_one_stored(
    reopen: Callable[[], AbstractAsyncContextManager[Bus]], bus: Bus, topic: str
) -> None:
    await bus.subscribe(topic, "g", start="earliest")
    await bus.publish(topic, [event(1), event(2)])
    [first, _] = await bus.fetch(topic, "g", max_count=2, lease=3600)
    await bus.ack(topic, "g", [first.offset])
    await bus.stop()

    async with reopen() as again:
        assert [s.event.id for s in await again.read(topic)] == ["evt-1", "evt-2"]
        [group] = await again.groups(topic)
        assert (group.in_flight, group.backlog) == (1, 0)
        [dup] = await again.publish(topic, [event(2)])
        assert dup.duplicate is True
