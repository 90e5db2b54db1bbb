"""The RabbitMQ source against a real server: a backlog larger than the prefetch
window arrives once and leaves the queue empty, and a queue deleted under the source
(RabbitMQ cancels its consumer) is declared again and consumed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from integration.brokers.cases import (
    AMQP_URL,
    HOST,
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


@pytest.fixture
async def channel() -> AsyncIterator[Any]:
    require_port(HOST, 5672, "RabbitMQ")
    import aio_pika

    connection = await aio_pika.connect(AMQP_URL)
    yield await connection.channel()
    await connection.close()


async def publish(channel: Any, queue: str, bodies: list[bytes]) -> None:
    import aio_pika

    for body in bodies:
        await channel.default_exchange.publish(aio_pika.Message(body), routing_key=queue)


async def test_a_backlog_beyond_the_prefetch_arrives_once_and_empties_the_queue(
    node: Node, tmp_path: Path, channel: Any
) -> None:
    name = unique_name()
    try:
        declared = await channel.declare_queue(name, durable=True)
        await publish(channel, name, [json.dumps({"n": n}).encode() for n in range(1200)])
        source = {"kind": "amqp", "url": AMQP_URL, "queue": name, "prefetch": 100}
        out = await deploy_recorder(node, tmp_path, source, batch_size=200)

        events = await eventually(lambda: len(handled(out)) >= 1200 and handled(out), what="all")
        assert sorted(e["data"]["n"] for e in events) == list(range(1200))
        assert not any(e["amqpredelivered"] for e in events)

        async def empty() -> bool:
            await declared.declare()
            result = declared.declaration_result
            return bool(result.message_count == 0 and result.consumer_count == 1)

        await eventually(empty, what="every message acknowledged")
        stats = await stats_once(node, lambda s: s["published"] >= 1200, what="the counters")
        assert stats["received"] == stats["published"] == 1200
    finally:
        await channel.queue_delete(name)


async def test_a_deleted_queue_is_declared_again_and_consumed(
    node: Node, tmp_path: Path, channel: Any
) -> None:
    name = unique_name()
    source = {"kind": "amqp", "url": AMQP_URL, "queue": name, "backoff": 0.05}
    try:
        out = await deploy_recorder(node, tmp_path, source, batch_size=200)
        await publish(channel, name, [b'{"before": 1}'])
        await eventually(lambda: handled(out), what="the first message")

        await channel.queue_delete(name)
        await eventually(
            lambda: source_stats(node)[0]["reconnects"] >= 1 and connected(node),
            what="the source to connect again",
        )
        assert "cancelled the consumer" in source_stats(node)[0]["last_error"]
        await publish(channel, name, [b'{"after": 1}'])
        events = await eventually(lambda: len(handled(out)) >= 2 and handled(out), what="more")
        assert [e["data"] for e in events] == [{"before": 1}, {"after": 1}]
    finally:
        await channel.queue_delete(name)
