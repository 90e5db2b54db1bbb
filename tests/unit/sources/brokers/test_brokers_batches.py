"""How broker sources move batches: the cheap check of raw messages keeps every rule of
CloudEvents (what it cannot vouch for gets the full check), and ``Overlap`` commits
batches in order, one at a time, with a failure stopping the loop."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest

from triggerfish.events.validate import validate_event
from triggerfish.sources.brokers import base
from triggerfish.sources.brokers.base import Overlap
from triggerfish.sources.brokers.convert import Converter, DroppedMessage, Message

SOURCE = "nats://broker:4222/orders"


@pytest.mark.parametrize(
    "message",
    [
        Message(payload=b'{"n": 1}', subject="orders.created", stable_id="orders-1"),
        Message(payload="température".encode(), subject="capteurs/été/salle", message_id="é1"),
        Message(payload=b"<a/>", subject="s", content_type="application/xml; charset=utf-8"),
        Message(payload=b"x", subject="s", headers={"Ünïcode": "välue"}, delivery_count=2),
        Message(payload=b"x", subject="", event_type="order.paid"),
    ],
)
def test_raw_messages_become_valid_events(message: Message) -> None:
    event = Converter(source=SOURCE, event_type="nats.message").event(message)
    validate_event(event)
    assert event.subject == (message.subject or None)
    assert event.type == (message.event_type or "nats.message")


@pytest.mark.parametrize(
    ("message", "fault"),
    [
        (Message(payload=b"x", subject="s", content_type="not a media type"), "datacontenttype"),
        (Message(payload=b"x", subject="s\udcff"), "subject"),
        (Message(payload=b"x", subject="s", delivery_count=2**31), "deliverycount"),
        (Message(payload=b"x", subject="s", extensions={"Bad-Name": "v"}), "Bad-Name"),
        (Message(payload=b"x", subject="s", headers={"k": "\udcff"}), "surrogate"),
    ],
)
def test_messages_that_break_a_rule_are_dropped_with_the_reason(
    message: Message, fault: str
) -> None:
    convert = Converter(source=SOURCE, event_type="nats.message")
    with pytest.raises(DroppedMessage, match=fault):
        convert.event(message)


def test_a_source_option_that_is_no_uri_drops_every_message() -> None:
    convert = Converter(source="has spaces", event_type="t")
    with pytest.raises(DroppedMessage, match="source"):
        convert.event(Message(payload=b"{}", subject="s"))


def test_a_batch_shares_the_time_it_is_given() -> None:
    convert = Converter(source=SOURCE, event_type="t")
    stamp = "2024-05-01T12:30:00.000001Z"
    events = [convert.event(Message(payload=b"{}", subject="s"), time=stamp) for _ in range(3)]
    assert {event.time for event in events} == {stamp}
    assert len({event.id for event in events}) == 3


async def test_overlap_commits_in_order_while_the_next_batch_is_read() -> None:
    done: list[int] = []
    running = 0
    most = 0

    async def commit(n: int) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.01 * (3 - n % 3))  # later batches finish faster
        done.append(n)
        running -= 1

    async with Overlap() as overlap:
        for n in range(6):
            await overlap.submit(commit(n))
            assert len(done) >= n  # the one before is committed before the next starts
    assert done == list(range(6))
    assert most == 1


async def test_a_failed_commit_stops_the_loop_before_the_next_batch_starts() -> None:
    started: list[int] = []

    async def commit(n: int) -> None:
        started.append(n)
        if n == 1:
            raise ConnectionError("the bus is gone")

    async def loop() -> None:
        async with Overlap() as overlap:
            for n in range(4):
                await overlap.submit(commit(n))

    with pytest.raises(ConnectionError, match="the bus is gone"):
        await loop()
    assert started == [0, 1]


async def test_leaving_on_an_error_cancels_the_batch_in_hand() -> None:
    acked = asyncio.Event()

    async def commit() -> None:
        await asyncio.sleep(10)
        acked.set()

    async def loop() -> None:
        async with Overlap() as overlap:
            await overlap.submit(commit())
            raise RuntimeError("read failed")

    with pytest.raises(RuntimeError, match="read failed"):
        await loop()
    assert not acked.is_set()


async def stopped_while_reading(batch: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    """A consume loop that submitted ``batch`` and reads the next one from its broker,
    cancelled there (the source stops): the task, to await."""
    submitted = asyncio.Event()

    async def loop() -> None:
        async with Overlap() as overlap:
            await overlap.submit(batch)
            submitted.set()
            await asyncio.Event().wait()  # reading the next batch, when the stop comes

    consuming = asyncio.create_task(loop())
    await submitted.wait()
    consuming.cancel()
    return consuming


async def test_a_stop_lets_the_batch_in_hand_be_committed_and_acknowledged() -> None:
    committing = asyncio.Event()
    acked = asyncio.Event()

    async def handle() -> None:
        await committing.wait()  # the bus commit under way
        acked.set()

    consuming = await stopped_while_reading(handle())
    committing.set()
    with pytest.raises(asyncio.CancelledError):
        await consuming
    assert acked.is_set()  # not delivered again to the next consumer


async def test_a_stop_cancels_a_batch_in_hand_that_does_not_finish_in_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(base, "FINISH_WITHIN", 0.05)
    cancelled = asyncio.Event()

    async def handle() -> None:
        try:
            await asyncio.Event().wait()  # a bus that does not answer
        except asyncio.CancelledError:
            cancelled.set()
            raise

    consuming = await stopped_while_reading(handle())
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(consuming, 5)
    assert cancelled.is_set()


async def test_a_stop_while_the_next_batch_waits_for_the_one_in_hand_lets_it_finish() -> None:
    started = asyncio.Event()
    committing = asyncio.Event()
    handled: list[int] = []

    async def handle(n: int) -> None:
        if n == 0:
            started.set()
            await committing.wait()
        handled.append(n)

    async def loop() -> None:
        async with Overlap() as overlap:
            await overlap.submit(handle(0))
            await overlap.submit(handle(1))  # waits for batch 0 when the stop comes

    consuming = asyncio.create_task(loop())
    # Batch 0 runs only once the loop gave way, in its second submit's wait.
    await started.wait()
    consuming.cancel()
    committing.set()
    with pytest.raises(asyncio.CancelledError):
        await consuming
    assert handled == [0]  # batch 0 acknowledged; batch 1 never started
