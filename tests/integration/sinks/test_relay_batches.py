"""The sink relay sends whole batches against the real brokers: hundreds of events
waiting on ``_sink.<broker>`` arrive once and in order, each acknowledged on the bus
only once its broker confirmed it, and in a batch where some events fail the others
still go out while the failed ones are retried."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from integration.brokers.cases import (
    AMQP_URL,
    HOST,
    MQTT_URL,
    NATS_URL,
    REDIS_URL,
    eventually,
    unique_name,
)
from support.services import require_port
from triggerfish.bus.sqlite import SqliteBus
from triggerfish.events.create import new_event
from triggerfish.functions.brokers import BrokerConfig
from triggerfish.sinks.message import SINK_ADDRESS
from triggerfish.sinks.registry import make_sink
from triggerfish.sinks.relay import RELAY_GROUP, SinkRelay
from triggerfish.sources.brokers.mqtt.client import MqttClient, address_of

pytestmark = pytest.mark.integration


@pytest.fixture
async def bus(tmp_path: Path) -> AsyncIterator[SqliteBus]:
    made = SqliteBus(tmp_path / "bus.db")
    await made.start()
    yield made
    await made.stop()


async def relay_of(bus: SqliteBus, broker: dict[str, Any], addresses: list[str]) -> SinkRelay:
    """A running relay for broker ``b`` with one event per address waiting for it."""
    relay = SinkRelay(bus, make_sink("b", BrokerConfig.model_validate(broker)))
    events = [
        new_event(source="tests", type="t", data={"n": n}).with_extensions(sinkaddress=address)
        for n, address in enumerate(addresses)
    ]
    await bus.create_topic(relay.topic)
    await bus.publish(relay.topic, events)
    assert all(e.extensions[SINK_ADDRESS] for e in events)
    await relay.start()
    return relay


async def settled(bus: SqliteBus, relay: SinkRelay) -> bool:
    (group,) = [g for g in await bus.groups(relay.topic) if g.group == RELAY_GROUP]
    return group.backlog + group.in_flight + group.waiting_retry == 0


async def test_redis_gets_a_long_backlog_once_and_in_order(bus: SqliteBus) -> None:
    require_port(HOST, 6379, "Redis")
    import redis.asyncio as redis

    stream = unique_name()
    client = redis.from_url(REDIS_URL)
    relay = await relay_of(bus, {"kind": "redis", "url": REDIS_URL}, [stream] * 300)
    try:
        await eventually(lambda: settled(bus, relay), what="every event acknowledged")
        entries = await client.xrange(stream)
        assert [json.loads(fields[b"data"])["n"] for _id, fields in entries] == list(range(300))
        assert relay.sink.stats.published == 300
        assert relay.sink.stats.failures == 0
    finally:
        await relay.stop()
        await client.delete(stream)
        await client.aclose()


async def test_mqtt_gets_a_long_backlog_once_and_in_order(bus: SqliteBus) -> None:
    require_port(HOST, 1883, "Mosquitto")
    topic = f"{unique_name()}/out"
    reader = MqttClient(address_of(MQTT_URL), unique_name("reader-"))
    await reader.connect()
    await reader.subscribe([(topic, 1)])
    # Mosquitto as it comes (no TCP_NODELAY): the publishes of a batch are in flight
    # together, and their acknowledgements must not wait on delayed TCP acks.
    relay = await relay_of(bus, {"kind": "mqtt", "url": MQTT_URL, "qos": 1}, [topic] * 500)
    try:
        got: list[int] = []
        while len(got) < 500:
            async with asyncio.timeout(10):
                batch = await reader.take(500)
            reader.acknowledge(batch)
            got += [json.loads(message.payload)["n"] for message in batch]
        assert got == list(range(500))
        await eventually(lambda: settled(bus, relay), what="every event acknowledged")
        assert relay.sink.stats.published == 500
        assert relay.sink.stats.failures == 0
    finally:
        await relay.stop()
        await reader.close()


async def test_amqp_confirms_a_long_backlog(bus: SqliteBus) -> None:
    require_port(HOST, 5672, "RabbitMQ")
    import aio_pika

    queue_name = unique_name()
    connection = await aio_pika.connect(AMQP_URL)
    channel = await connection.channel()
    queue = await channel.declare_queue(queue_name, durable=True)
    relay = await relay_of(bus, {"kind": "amqp", "url": AMQP_URL}, [queue_name] * 200)
    try:
        await eventually(lambda: settled(bus, relay), what="every event acknowledged")
        got = []
        while (message := await queue.get(fail=False)) is not None:
            got.append(json.loads(message.body)["n"])
            await message.ack()
        assert got == list(range(200))
        assert relay.sink.stats.published == 200
    finally:
        await relay.stop()
        await channel.queue_delete(queue_name)
        await connection.close()


async def test_jetstream_sends_the_others_while_some_are_retried(bus: SqliteBus) -> None:
    require_port(HOST, 4222, "NATS")
    import nats

    here, later = unique_name(), unique_name()
    nc = await nats.connect(NATS_URL)
    js = nc.jetstream()
    await js.add_stream(name=here, subjects=[f"{here}.>"])
    broker = {"kind": "jetstream", "url": NATS_URL, "backoff": 0.05, "max_backoff": 0.2}
    addresses = [f"{here}.a" if n % 3 else f"{later}.a" for n in range(90)]
    relay = await relay_of(bus, broker, addresses)
    try:
        # No stream takes `later` yet: those events fail and wait, the others arrive.
        await eventually(
            lambda: relay.sink.stats.published == 60 and relay.sink.stats.failures >= 2,
            what="the 60 events a stream takes, and failures for the rest",
        )
        assert (await js.stream_info(here)).state.messages == 60
        await js.add_stream(name=later, subjects=[f"{later}.>"])
        await eventually(lambda: settled(bus, relay), what="the 30 others once a stream exists")
        assert (await js.stream_info(later)).state.messages == 30
        # Confirmed events were not sent again with the retried ones.
        assert relay.sink.stats.published == 90
    finally:
        await relay.stop()
        for name in (here, later):
            with contextlib.suppress(Exception):  # `later` may not exist
                await js.delete_stream(name)
        await nc.close()
