"""What only the NATS bus does: reaching the server, its names on the server, prefixes,
and the places where JetStream 2.9 needs a way around."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import pytest

from support.services import free_port
from triggerfish.bus.base import Bus
from triggerfish.bus.nats import NatsBus
from triggerfish.errors import AdapterError, ConfigError
from triggerfish.events.model import Event

OpenNats = Callable[[str], AbstractAsyncContextManager[Bus]]


def event(n: int) -> Event:
    return Event(id=f"evt-{n}", source="/shop", type="order.created", data=f"{n}".encode())


async def test_start_names_the_server_and_the_reason_when_it_cannot_connect() -> None:
    url = f"nats://robot:s3cret@127.0.0.1:{free_port()}"
    bus = NatsBus(url, connect_timeout=1.0)

    with pytest.raises(AdapterError) as caught:
        await bus.start()

    message = str(caught.value)
    assert "nats://robot:***@127.0.0.1:" in message
    assert "s3cret" not in message
    assert "refused" in message.lower() or "connect call failed" in message.lower()
    assert caught.value.__cause__ is not None


async def test_calls_before_start_say_the_bus_is_not_started() -> None:
    bus = NatsBus("nats://127.0.0.1:4222")
    with pytest.raises(AdapterError, match="not started"):
        await bus.topics()


@pytest.mark.parametrize("prefix", ["", "tf.x", "tf_x", "t f"])
def test_a_prefix_that_cannot_name_streams_is_refused(prefix: str) -> None:
    with pytest.raises(ConfigError, match="prefix"):
        NatsBus("nats://127.0.0.1:4222", prefix=prefix)


@pytest.mark.parametrize(
    "topic",
    ["_invoke.resize", "_bucket.photos", "orders-failed", "a_2eb", "ünïcode topic", "x" * 255],
)
async def test_any_topic_and_group_name_comes_back_whole(open_nats: OpenNats, topic: str) -> None:
    group = "resize.on-upload_v2"
    async with open_nats("names") as bus:
        await bus.create_topic(topic)
        await bus.subscribe(topic, group, start="earliest")
        [published] = await bus.publish(topic, [event(1)])

        [delivery] = await bus.fetch(topic, group, max_count=1, lease=30)

        assert (delivery.topic, delivery.group, delivery.offset) == (
            topic,
            group,
            published.offset,
        )
        assert [t.name for t in await bus.topics()] == [topic]
        assert [(g.topic, g.group, g.in_flight) for g in await bus.groups()] == [(topic, group, 1)]


async def test_operators_see_each_topic_as_a_stream_under_the_prefix(
    open_nats: OpenNats, nats_url: str, name: Callable[[str], str]
) -> None:
    import nats

    topic = name("_invoke.resize")
    async with open_nats("operators") as bus:
        await bus.create_topic(topic, retention=3600)
        await bus.subscribe(topic, "resize.live")
        client = await nats.connect(nats_url)
        try:
            js = client.jsm()
            streams = [i for i in await js.streams_info() if i.config.description == topic]
            [consumer] = await js.consumers_info(streams[0].config.name or "")
        finally:
            await client.close()

    [stream] = streams
    encoded = "_5finvoke_2eresize" + topic.removeprefix("_invoke.resize")
    prefix = (stream.config.name or "").removesuffix(f"_{encoded}")
    assert prefix.startswith("tft-")
    assert stream.config.subjects == [f"{prefix}.t.{encoded}"]
    assert (stream.config.max_age, stream.config.duplicate_window) == (3600, 3600)
    assert (consumer.config.description, consumer.config.durable_name) == (
        "resize.live",
        "resize_2elive",
    )


async def test_prefixes_keep_installations_apart(open_nats: OpenNats) -> None:
    async with open_nats("blue") as blue, open_nats("green") as green:
        await blue.create_topic("orders")
        await green.create_topic("orders")
        await blue.publish("orders", [event(1), event(2)])
        [first] = await green.publish("orders", [event(1)])

        assert first.duplicate is False
        assert ((await blue.topic("orders")).count, (await green.topic("orders")).count) == (2, 1)
        assert [t.name for t in await green.topics()] == ["orders"]


async def test_a_group_replayed_by_time_can_still_take_longer_leases(open_nats: OpenNats) -> None:
    # JetStream 2.9 cannot update a consumer that starts at a time; the bus replays from
    # the offset that time resolves to, so the group keeps its ack wait updatable.
    async with open_nats("replay") as bus:
        await bus.create_topic("orders")
        await bus.subscribe("orders", "g")
        await bus.publish("orders", [event(1)])
        since = time.time()
        await bus.publish("orders", [event(2)])

        assert await bus.seek("orders", "g", since=since) == 1
        [delivery] = await bus.fetch("orders", "g", max_count=10, lease=600)

        assert (delivery.event.id, delivery.attempt) == ("evt-2", 1)


async def test_a_lease_longer_than_the_ack_wait_holds_across_the_old_ack_wait(
    open_nats: OpenNats,
) -> None:
    # The kind starts groups with an ack wait of one second; a longer lease raises it.
    async with open_nats("long") as bus:
        await bus.create_topic("orders")
        await bus.subscribe("orders", "g")
        await bus.publish("orders", [event(1)])
        [held] = await bus.fetch("orders", "g", max_count=1, lease=3)

        assert await bus.fetch("orders", "g", max_count=1, lease=3, wait=1.5) == []
        [again] = await bus.fetch("orders", "g", max_count=1, lease=3, wait=10)

        assert (again.offset, again.attempt) == (held.offset, 2)
        assert time.time() >= held.lease_until - 0.15
