"""What particular kinds promise beyond the shared contract: Redis claims back what a
dead consumer left pending and reconnects when its connection is cut; RabbitMQ rejects
a message that cannot become an event to the queue's dead-letter exchange."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from integration.brokers.cases import (
    AMQP_URL,
    HOST,
    REDIS_URL,
    connected,
    deploy_recorder,
    eventually,
    handled,
    source_stats,
    stats_once,
    unique_name,
)
from support.services import require_port
from triggerfish.node import Node

pytestmark = pytest.mark.integration


async def test_redis_claims_back_entries_a_dead_consumer_left_pending(
    node: Node, tmp_path: Path
) -> None:
    require_port(HOST, 6379, "Redis")
    import redis.asyncio as redis

    stream = unique_name()
    client = redis.from_url(REDIS_URL)
    try:
        group = "shared"
        await client.xgroup_create(stream, group, id="0", mkstream=True)
        await client.xadd(stream, {"data": b'{"order": 7}'})
        # Another node took the entry and died before acknowledging it.
        taken = await client.xreadgroup(group, "dead-node", {stream: ">"}, count=10)
        assert len(taken[0][1]) == 1

        source = {"kind": "redis", "url": REDIS_URL, "stream": stream, "group": group}
        out = await deploy_recorder(node, tmp_path, {**source, "claim_idle": 0.2})
        events = await eventually(lambda: handled(out), what="the claimed entry")
        assert events[0]["data"] == {"order": 7}
        assert events[0]["deliverycount"] >= 2
        pending = await client.xpending(stream, group)
        await eventually(lambda: client.xpending(stream, group), what="the pending list to be read")
        assert pending["pending"] <= 1
        assert (await client.xpending(stream, group))["pending"] == 0
    finally:
        await client.delete(stream)
        await client.aclose()


async def test_redis_source_reconnects_after_its_connection_is_cut(
    node: Node, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    require_port(HOST, 6379, "Redis")
    import redis.asyncio as redis

    stream = unique_name()
    name = f"tf-{stream}"
    url = f"{REDIS_URL}?client_name={name}"
    client = redis.from_url(REDIS_URL)
    try:
        out = await deploy_recorder(node, tmp_path, {"kind": "redis", "url": url, "stream": stream})
        killed = 0
        for entry in await client.client_list():
            if entry.get("name") == name:
                await client.client_kill_filter(_id=entry["id"])
                killed += 1
        assert killed >= 1
        await eventually(
            lambda: source_stats(node)[0]["reconnects"] >= 1 and connected(node),
            what="the source to reconnect",
        )
        await client.xadd(stream, {"data": json.dumps({"after": "reconnect"})})
        events = await eventually(lambda: handled(out), what="the entry sent after")
        assert events[0]["data"] == {"after": "reconnect"}
        assert "reconnecting in" in caplog.text
    finally:
        await client.delete(stream)
        await client.aclose()


async def test_amqp_rejects_what_cannot_be_an_event_to_the_dead_letter_exchange(
    node: Node, tmp_path: Path
) -> None:
    require_port(HOST, 5672, "RabbitMQ")
    import aio_pika

    queue_name = unique_name()
    parked = f"{queue_name}-parked"
    arguments = {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": parked}
    connection = await aio_pika.connect(AMQP_URL)
    try:
        channel = await connection.channel()
        parked_queue = await channel.declare_queue(parked, durable=True)
        source = {
            "kind": "amqp",
            "url": AMQP_URL,
            "queue": queue_name,
            "arguments": arguments,
            "format": "cloudevent",
        }
        out = await deploy_recorder(node, tmp_path, source)
        good = {"specversion": "1.0", "id": "e1", "source": "shop", "type": "order.created",
                "data": {"order": 1}}  # fmt: skip
        for body in (b"not an event", json.dumps(good).encode()):
            await channel.default_exchange.publish(aio_pika.Message(body), routing_key=queue_name)

        events = await eventually(lambda: handled(out), what="the valid event")
        assert [(e["id"], e["type"], e["data"]) for e in events] == [
            ("e1", "order.created", {"order": 1})
        ]
        message = await eventually(lambda: parked_queue.get(fail=False), what="the parked one")
        assert message.body == b"not an event"
        await message.ack()
        stats = await stats_once(node, lambda s: s["dropped"] >= 1, what="the drop counted")
        assert stats["dropped"] == 1
    finally:
        channel = await connection.channel()
        await channel.queue_delete(queue_name)
        await channel.queue_delete(parked)
        await connection.close()
