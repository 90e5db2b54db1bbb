"""Contract: consumer groups, leases, acks, retries and waiting fetches, for every Bus."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from triggerfish.bus.base import Bus
from triggerfish.errors import ValidationError
from triggerfish.events.model import Event

if TYPE_CHECKING:
    from conftest import ManualClock

# Generous bounds for "this happens soon": only reached when a wake-up is missing.
SOON = 10.0


def event(n: int) -> Event:
    return Event(id=f"evt-{n}", source="/shop", type="order.created", data=f"{n}".encode())


def ids(deliveries: list[object]) -> list[str]:
    return [d.event.id for d in deliveries]  # type: ignore[attr-defined]


async def test_fetch_leases_events_and_ack_removes_them(bus: Bus, topic: str) -> None:
    await bus.subscribe(topic, "g")
    published = await bus.publish(topic, [event(1), event(2)])

    got = await bus.fetch(topic, "g", max_count=10, lease=30)
    assert ids(got) == ["evt-1", "evt-2"]
    assert [d.offset for d in got] == [r.offset for r in published]
    assert all(d.attempt == 1 and d.topic == topic and d.group == "g" for d in got)
    assert all(d.lease_until > d.published_at for d in got)
    [info] = await bus.groups(topic)
    assert (info.in_flight, info.backlog, info.waiting_retry) == (2, 0, 0)

    await bus.ack(topic, "g", [d.offset for d in got])
    assert await bus.fetch(topic, "g", max_count=10, lease=30) == []
    [info] = await bus.groups(topic)
    assert (info.in_flight, info.backlog, info.cursor) == (0, 0, got[-1].offset)


async def test_fetch_takes_at_most_max_count_in_offset_order(bus: Bus, topic: str) -> None:
    await bus.subscribe(topic, "g")
    await bus.publish(topic, [event(n) for n in range(1, 8)])

    first = await bus.fetch(topic, "g", max_count=3, lease=30)
    second = await bus.fetch(topic, "g", max_count=10, lease=30)
    assert ids(first) == ["evt-1", "evt-2", "evt-3"]
    assert ids(second) == ["evt-4", "evt-5", "evt-6", "evt-7"]


async def test_retries_come_first_and_a_fetch_is_ordered_by_offset(bus: Bus, topic: str) -> None:
    await bus.subscribe(topic, "g")
    await bus.publish(topic, [event(n) for n in range(1, 6)])
    got = await bus.fetch(topic, "g", max_count=5, lease=30)
    await bus.nack(topic, "g", got[3].offset, delay=0)
    await bus.nack(topic, "g", got[1].offset, delay=0)
    await bus.publish(topic, [event(6), event(7)])

    again = await bus.fetch(topic, "g", max_count=3, lease=30)
    assert ids(again) == ["evt-2", "evt-4", "evt-6"]
    assert [d.attempt for d in again] == [2, 2, 1]
    offsets = [d.offset for d in again]
    assert offsets == sorted(offsets)


async def test_competing_consumers_of_a_group_never_share_an_event(bus: Bus, topic: str) -> None:
    await bus.subscribe(topic, "g")
    await bus.publish(topic, [event(n) for n in range(40)])

    batches = await asyncio.gather(
        *(bus.fetch(topic, "g", max_count=7, lease=30) for _ in range(8))
    )

    handed_out = [d.event.id for batch in batches for d in batch]
    assert len(handed_out) == 40
    assert len(set(handed_out)) == 40


async def test_implements_the_bus_protocol(bus: Bus) -> None:
    assert isinstance(bus, Bus)


async def test_every_group_gets_every_event(bus: Bus, topic: str) -> None:
    await bus.subscribe(topic, "billing")
    await bus.subscribe(topic, "shipping")
    await bus.publish(topic, [event(1), event(2)])

    billing = await bus.fetch(topic, "billing", max_count=10, lease=30)
    await bus.ack(topic, "billing", [d.offset for d in billing])
    shipping = await bus.fetch(topic, "shipping", max_count=10, lease=30)

    assert ids(billing) == ids(shipping) == ["evt-1", "evt-2"]
    assert {g.group: g.in_flight for g in await bus.groups(topic)} == {
        "billing": 0,
        "shipping": 2,
    }


async def test_earliest_group_sees_history_and_latest_only_what_follows(
    bus: Bus, topic: str
) -> None:
    await bus.publish(topic, [event(1), event(2)])
    await bus.subscribe(topic, "replayer", start="earliest")
    await bus.subscribe(topic, "live", start="latest")
    await bus.publish(topic, [event(3)])

    assert ids(await bus.fetch(topic, "replayer", max_count=10, lease=30)) == [
        "evt-1",
        "evt-2",
        "evt-3",
    ]
    assert ids(await bus.fetch(topic, "live", max_count=10, lease=30)) == ["evt-3"]


async def test_subscribing_again_keeps_the_groups_place(bus: Bus, topic: str) -> None:
    await bus.subscribe(topic, "g")
    await bus.publish(topic, [event(1), event(2)])
    await bus.fetch(topic, "g", max_count=1, lease=30)
    await bus.subscribe(topic, "g", start="earliest")

    assert ids(await bus.fetch(topic, "g", max_count=10, lease=30)) == ["evt-2"]


async def test_unsubscribed_group_starts_afresh(bus: Bus, topic: str) -> None:
    await bus.subscribe(topic, "g")
    await bus.publish(topic, [event(1)])
    await bus.fetch(topic, "g", max_count=1, lease=30)
    await bus.unsubscribe(topic, "g")
    assert await bus.groups(topic) == []
    await bus.unsubscribe(topic, "g")  # idempotent

    await bus.subscribe(topic, "g", start="earliest")
    [again] = await bus.fetch(topic, "g", max_count=10, lease=30)
    assert (again.event.id, again.attempt) == ("evt-1", 1)


async def test_expired_lease_redelivers_with_next_attempt(
    clock: ManualClock, bus: Bus, topic: str
) -> None:
    await bus.subscribe(topic, "g")
    await bus.publish(topic, [event(1)])
    [first] = await bus.fetch(topic, "g", max_count=1, lease=10)
    assert first.lease_until == pytest.approx(clock() + 10)

    clock.advance(9)
    assert await bus.fetch(topic, "g", max_count=1, lease=10) == []
    clock.advance(2)
    [second] = await bus.fetch(topic, "g", max_count=1, lease=10)
    clock.advance(11)
    [third] = await bus.fetch(topic, "g", max_count=1, lease=10)

    assert (second.offset, second.attempt) == (first.offset, 2)
    assert (third.offset, third.attempt) == (first.offset, 3)
    assert third.event == first.event


async def test_extend_keeps_a_lease_alive(clock: ManualClock, bus: Bus, topic: str) -> None:
    await bus.subscribe(topic, "g")
    await bus.publish(topic, [event(1)])
    [first] = await bus.fetch(topic, "g", max_count=1, lease=10)

    clock.advance(8)
    await bus.extend(topic, "g", [first.offset], 10)
    clock.advance(8)
    assert await bus.fetch(topic, "g", max_count=1, lease=10) == []
    clock.advance(3)
    [again] = await bus.fetch(topic, "g", max_count=1, lease=10)
    assert again.attempt == 2


async def test_short_real_lease_expires_and_a_waiting_fetch_gets_it(bus: Bus, topic: str) -> None:
    await bus.subscribe(topic, "g")
    await bus.publish(topic, [event(1)])
    [first] = await bus.fetch(topic, "g", max_count=1, lease=0.2)

    [again] = await asyncio.wait_for(
        bus.fetch(topic, "g", max_count=1, lease=30, wait=SOON * 3), SOON
    )
    assert (again.offset, again.attempt) == (first.offset, 2)


async def test_nack_delays_the_retry(clock: ManualClock, bus: Bus, topic: str) -> None:
    await bus.subscribe(topic, "g")
    await bus.publish(topic, [event(1)])
    [first] = await bus.fetch(topic, "g", max_count=1, lease=10)
    await bus.nack(topic, "g", first.offset, delay=30)

    clock.advance(20)  # past the lease, before the delay
    assert await bus.fetch(topic, "g", max_count=1, lease=10) == []
    [info] = await bus.groups(topic)
    assert (info.waiting_retry, info.in_flight) == (1, 0)
    clock.advance(11)
    [retry] = await bus.fetch(topic, "g", max_count=1, lease=10)
    assert (retry.offset, retry.attempt) == (first.offset, 2)


async def test_ack_after_nack_drops_the_retry(clock: ManualClock, bus: Bus, topic: str) -> None:
    await bus.subscribe(topic, "g")
    await bus.publish(topic, [event(1)])
    [first] = await bus.fetch(topic, "g", max_count=1, lease=10)
    await bus.nack(topic, "g", first.offset, delay=5)
    await bus.ack(topic, "g", [first.offset])

    clock.advance(60)
    assert await bus.fetch(topic, "g", max_count=1, lease=10) == []


async def test_waiting_fetch_wakes_when_the_retry_delay_is_over(bus: Bus, topic: str) -> None:
    await bus.subscribe(topic, "g")
    await bus.publish(topic, [event(1)])
    [first] = await bus.fetch(topic, "g", max_count=1, lease=30)
    await bus.nack(topic, "g", first.offset, delay=0.2)

    [retry] = await asyncio.wait_for(
        bus.fetch(topic, "g", max_count=1, lease=30, wait=SOON * 3), SOON
    )
    assert (retry.offset, retry.attempt) == (first.offset, 2)


async def test_waiting_fetch_wakes_on_publish(bus: Bus, topic: str) -> None:
    await bus.subscribe(topic, "g")
    waiting = asyncio.create_task(bus.fetch(topic, "g", max_count=10, lease=30, wait=SOON * 3))
    await asyncio.sleep(0.05)  # let the fetch find nothing and start waiting
    assert not waiting.done()

    await bus.publish(topic, [event(1)])
    got = await asyncio.wait_for(waiting, SOON)
    assert ids(got) == ["evt-1"]


async def test_waiting_fetch_ignores_other_topics(bus: Bus, topic: str) -> None:
    other = f"{topic}-other"
    await bus.create_topic(other)
    await bus.subscribe(topic, "g")
    waiting = asyncio.create_task(bus.fetch(topic, "g", max_count=10, lease=30, wait=0.3))
    await asyncio.sleep(0.05)
    await bus.publish(other, [event(1)])

    assert await asyncio.wait_for(waiting, SOON) == []


async def test_fetch_without_wait_returns_empty_at_once(bus: Bus, topic: str) -> None:
    await bus.subscribe(topic, "g")
    assert await bus.fetch(topic, "g", max_count=10, lease=30) == []


@pytest.mark.parametrize(
    ("max_count", "lease", "wait"), [(0, 30.0, 0.0), (1, 0.0, 0.0), (1, 30.0, -1.0)]
)
async def test_fetch_rejects_nonsense_arguments(
    bus: Bus, topic: str, max_count: int, lease: float, wait: float
) -> None:
    await bus.subscribe(topic, "g")
    with pytest.raises(ValidationError):
        await bus.fetch(topic, "g", max_count=max_count, lease=lease, wait=wait)
