"""Contract on the real clock, for every Bus: leases that run out or are extended,
releases with a delay, dead-lettering, the dedupe window, replay and retention.

The tests that move a hand-held clock cannot run on a broker that keeps its own time;
these check the same promises with leases and delays of about a second, waiting for
conditions rather than for fixed times wherever there is one to wait for.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import TypeVar

from triggerfish.bus.base import Bus, Delivery
from triggerfish.events.model import Event

T = TypeVar("T")

#: The lease of these tests, in seconds (on NATS, the ack wait a new group starts with).
LEASE = 1.0
#: Generous bound for "this happens soon": only reached when something is wrong.
SOON = 10.0
#: Tolerance for the moment a lease or delay ends, in seconds.
SLACK = 0.15


def event(n: int) -> Event:
    return Event(id=f"evt-{n}", source="/shop", type="order.created", data=f"{n}".encode())


async def eventually(check: Callable[[], Awaitable[T]], *, what: str, within: float = SOON) -> T:
    """The first truthy result of ``check``, polled until ``within`` seconds have passed."""
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"after {within} s still waiting for {what}; last: {result!r}")
        await asyncio.sleep(0.02)


async def sleep_until(moment: float) -> None:
    """Wait until the wall clock reads ``moment``: what these tests are about."""
    await asyncio.sleep(max(moment - time.time(), 0.0))


async def consume_all(bus: Bus, topic: str, group: str) -> list[Delivery]:
    got = await bus.fetch(topic, group, max_count=100, lease=30)
    await bus.ack(topic, group, [d.offset for d in got])
    return got


async def test_a_lease_that_runs_out_delivers_the_event_again(bus: Bus, topic: str) -> None:
    await bus.subscribe(topic, "g")
    await bus.publish(topic, [event(1)])
    [first] = await bus.fetch(topic, "g", max_count=1, lease=LEASE)
    assert await bus.fetch(topic, "g", max_count=1, lease=LEASE) == []

    [again] = await bus.fetch(topic, "g", max_count=1, lease=LEASE, wait=SOON)

    assert time.time() >= first.lease_until - SLACK
    assert (again.offset, again.attempt, again.event) == (first.offset, 2, first.event)


async def test_extend_keeps_a_lease_past_its_first_end(bus: Bus, topic: str) -> None:
    await bus.subscribe(topic, "g")
    await bus.publish(topic, [event(1)])
    [first] = await bus.fetch(topic, "g", max_count=1, lease=LEASE)
    await sleep_until(first.lease_until - LEASE / 2)
    await bus.extend(topic, "g", [first.offset], LEASE)
    extended_until = time.time() + LEASE

    await sleep_until(first.lease_until + SLACK)
    assert await bus.fetch(topic, "g", max_count=1, lease=LEASE) == []
    [again] = await bus.fetch(topic, "g", max_count=1, lease=LEASE, wait=SOON)

    assert time.time() >= extended_until - SLACK
    assert (again.offset, again.attempt) == (first.offset, 2)


async def test_a_release_with_a_delay_waits_before_the_next_delivery(bus: Bus, topic: str) -> None:
    await bus.subscribe(topic, "g")
    await bus.publish(topic, [event(1)])
    [first] = await bus.fetch(topic, "g", max_count=1, lease=30)
    await bus.nack(topic, "g", first.offset, delay=LEASE)
    due = time.time() + LEASE

    [info] = await bus.groups(topic)
    assert (info.waiting_retry, info.in_flight, info.backlog) == (1, 0, 0)
    assert await bus.fetch(topic, "g", max_count=1, lease=30) == []
    [retry] = await bus.fetch(topic, "g", max_count=1, lease=30, wait=SOON)

    assert time.time() >= due - SLACK
    assert (retry.offset, retry.attempt) == (first.offset, 2)
    [info] = await bus.groups(topic)
    assert (info.waiting_retry, info.in_flight) == (0, 1)


async def test_an_event_that_keeps_failing_is_dead_lettered_with_its_identity(
    bus: Bus, topic: str
) -> None:
    dead = f"{topic}-failed"
    await bus.create_topic(dead)
    await bus.subscribe(topic, "g")
    [published] = await bus.publish(topic, [event(1)])
    attempts: list[int] = []
    while not attempts or attempts[-1] < 3:
        [delivery] = await bus.fetch(topic, "g", max_count=1, lease=30, wait=SOON)
        attempts.append(delivery.attempt)
        if delivery.attempt < 3:
            await bus.nack(topic, "g", delivery.offset, delay=0.1)
            continue
        failed = delivery.event.with_extensions(deadletterreason="handler raised")
        [stored] = await bus.publish(dead, [failed], dedupe=False)
        await bus.ack(topic, "g", [delivery.offset])

    assert attempts == [1, 2, 3]
    assert delivery.offset == published.offset
    assert stored.duplicate is False
    [letter] = await bus.read(dead)
    assert (letter.event.id, letter.event.source) == ("evt-1", "/shop")
    assert letter.event.extensions["deadletterreason"] == "handler raised"
    [info] = await bus.groups(topic)
    assert (info.in_flight, info.waiting_retry, info.backlog) == (0, 0, 0)
    assert await bus.fetch(topic, "g", max_count=1, lease=30, wait=0.3) == []
    # A second dead-lettering of the same event (after a redrive) is stored again.
    [again] = await bus.publish(dead, [failed], dedupe=False)
    assert (again.duplicate, (await bus.topic(dead)).count) == (False, 2)


async def test_a_pair_is_a_duplicate_within_the_window_and_new_after_it(
    forgetful_bus: Bus, name: Callable[[str], str]
) -> None:
    topic = name("orders")
    await forgetful_bus.create_topic(topic)
    [first] = await forgetful_bus.publish(topic, [event(1)])
    [again] = await forgetful_bus.publish(topic, [event(1)])
    assert (again.duplicate, again.offset) == (True, first.offset)

    async def new_again() -> int | None:
        [result] = await forgetful_bus.publish(topic, [event(1)])
        return None if result.duplicate else result.offset

    later = await eventually(new_again, what="the dedupe window to pass")

    assert later > first.offset
    [repeat] = await forgetful_bus.publish(topic, [event(1)])
    assert (repeat.duplicate, repeat.offset) == (True, later)
    assert [s.event.id for s in await forgetful_bus.read(topic)] == ["evt-1", "evt-1"]


async def test_replay_by_time_delivers_what_was_published_since(bus: Bus, topic: str) -> None:
    await bus.subscribe(topic, "g")
    await bus.publish(topic, [event(1), event(2)])
    [_, second] = await bus.read(topic)

    async def later() -> bool:
        return time.time() > second.published_at + 0.01

    await eventually(later, what="the clock to move on")
    await bus.publish(topic, [event(3), event(4)])
    assert len(await consume_all(bus, topic, "g")) == 4
    since = (await bus.read(topic, after=second.offset))[0].published_at

    assert await bus.seek(topic, "g", since=since) == 2

    replayed = await consume_all(bus, topic, "g")
    assert [(d.event.id, d.attempt) for d in replayed] == [("evt-3", 1), ("evt-4", 1)]
    assert [s.event.id for s in await bus.read(topic, since=since)] == ["evt-3", "evt-4"]
    assert [s.event.id for s in await bus.read(topic, since=since, limit=1)] == ["evt-3"]
    assert [s.event.id for s in await bus.read(topic, after=1, limit=2)] == ["evt-2", "evt-3"]


async def test_replay_from_the_future_skips_the_backlog(bus: Bus, topic: str) -> None:
    await bus.subscribe(topic, "g")
    await bus.publish(topic, [event(1), event(2)])

    assert await bus.seek(topic, "g", since=time.time() + 60) == 0

    assert await bus.fetch(topic, "g", max_count=10, lease=30) == []
    await bus.publish(topic, [event(3)])
    assert [d.event.id for d in await consume_all(bus, topic, "g")] == ["evt-3"]
    [info] = await bus.groups(topic)
    assert (info.backlog, info.in_flight) == (0, 0)


async def test_retention_removes_old_events_and_keeps_recent_ones(bus: Bus, topic: str) -> None:
    retention = 2.0
    await bus.create_topic(topic, retention=retention)
    await bus.publish(topic, [event(1), event(2)])
    [_, old] = await bus.read(topic)
    await sleep_until(old.published_at + retention / 2)
    [recent] = await bus.publish(topic, [event(3)])
    removed = 0

    async def only_recent_left() -> bool:
        nonlocal removed
        removed += await bus.trim()  # JetStream expires events itself; others do it here
        return (await bus.topic(topic)).count == 1

    await eventually(only_recent_left, what="the two old events to expire")

    assert removed == 2
    assert [s.event.id for s in await bus.read(topic)] == ["evt-3"]
    info = await bus.topic(topic)
    assert (info.retention, info.first_offset, info.last_offset) == (
        retention,
        recent.offset,
        recent.offset,
    )


async def test_a_lease_held_by_a_bus_that_went_away_comes_back(
    reopen: Callable[[], AbstractAsyncContextManager[Bus]], bus: Bus, topic: str
) -> None:
    await bus.subscribe(topic, "g")
    await bus.publish(topic, [event(1)])
    [first] = await bus.fetch(topic, "g", max_count=1, lease=LEASE)
    await bus.stop()  # without settling its lease

    async with reopen() as again:
        [back] = await again.fetch(topic, "g", max_count=1, lease=LEASE, wait=SOON)

    assert time.time() >= first.lease_until - SLACK
    assert (back.offset, back.attempt, back.event) == (first.offset, 2, first.event)


async def test_an_ack_after_a_release_drops_the_retry(bus: Bus, topic: str) -> None:
    await bus.subscribe(topic, "g")
    await bus.publish(topic, [event(1)])
    [first] = await bus.fetch(topic, "g", max_count=1, lease=30)
    await bus.nack(topic, "g", first.offset, delay=0.3)
    await bus.ack(topic, "g", [first.offset])

    [info] = await bus.groups(topic)
    assert (info.waiting_retry, info.in_flight) == (0, 0)
    assert await bus.fetch(topic, "g", max_count=1, lease=30, wait=1.0) == []


async def test_a_cancelled_waiting_fetch_leaves_nothing_leased_to_nobody(
    bus: Bus, topic: str
) -> None:
    await bus.subscribe(topic, "g")
    waiting = asyncio.create_task(bus.fetch(topic, "g", max_count=10, lease=30, wait=SOON))
    await asyncio.sleep(0.1)  # let it start waiting
    waiting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiting
    published = time.time()
    await bus.publish(topic, [event(1)])

    [delivery] = await bus.fetch(topic, "g", max_count=10, lease=30, wait=SOON)

    assert delivery.event.id == "evt-1"
    assert time.time() - published < 5  # long before a 30 s lease would have run out
