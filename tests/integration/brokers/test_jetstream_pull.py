"""The JetStream source's pull requests against a real server: a backlog larger than
many batches arrives once and is acknowledged, a message that cannot become an event
is terminated (not delivered again), and a consumer deleted under the source is made
again."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from integration.brokers.cases import (
    HOST,
    NATS_URL,
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


@dataclass
class Stream:
    name: str
    js: Any  # the JetStream context of a connection of the test's own

    async def publish(self, subject: str, body: bytes) -> None:
        await self.js.publish(f"{self.name}.{subject}", body)

    async def consumer(self, durable: str) -> Any:
        from nats.js.errors import NotFoundError

        try:
            return await self.js.consumer_info(self.name, durable)
        except NotFoundError:
            return None

    async def settled(self, durable: str) -> Any:
        """The consumer's info once all it delivered is acknowledged, else None."""
        info = await self.consumer(durable)
        if info is None or info.num_ack_pending or info.num_pending:
            return None
        return info if info.delivered.stream_seq else None


@pytest.fixture
async def stream() -> AsyncIterator[Stream]:
    """A stream ``<name>`` capturing ``<name>.>``."""
    require_port(HOST, 4222, "NATS")
    import nats

    name = unique_name()
    nc = await nats.connect(NATS_URL)
    js = nc.jetstream()
    await js.add_stream(name=name, subjects=[f"{name}.>"])
    yield Stream(name, js)
    await js.delete_stream(name)
    await nc.close()


def durable_of(node: Node) -> str:
    return "triggerfish_" + source_stats(node)[0]["trigger"].replace(".", "_")


async def test_a_backlog_of_many_batches_arrives_once_and_is_acked(
    node: Node, tmp_path: Path, stream: Stream
) -> None:
    for n in range(1500):
        await stream.publish("m", json.dumps({"n": n}).encode())
    source = {"kind": "jetstream", "url": NATS_URL, "stream": stream.name, "batch": 64}
    out = await deploy_recorder(node, tmp_path, source, start="earliest", batch_size=500)

    events = await eventually(
        lambda: len(handled(out)) >= 1500 and handled(out), what="1500 events"
    )
    assert sorted(e["data"]["n"] for e in events) == list(range(1500))
    assert {e["natsstream"] for e in events} == {stream.name}
    assert len({e["id"] for e in events}) == 1500
    durable = durable_of(node)
    info = await eventually(lambda: stream.settled(durable), what="every message acked")
    assert info.num_redelivered == 0
    stats = await stats_once(node, lambda s: s["published"] >= 1500, what="the counters")
    assert stats["received"] == stats["published"] == 1500


async def test_what_cannot_be_an_event_is_terminated_not_redelivered(
    node: Node, tmp_path: Path, stream: Stream
) -> None:
    source = {"kind": "jetstream", "url": NATS_URL, "stream": stream.name,
              "format": "cloudevent", "ack_wait": 1}  # fmt: skip
    out = await deploy_recorder(node, tmp_path, source)
    good = {"specversion": "1.0", "id": "e1", "source": "shop", "type": "order.created",
            "data": {"order": 1}}  # fmt: skip
    await stream.publish("a", b"not an event")
    await stream.publish("b", json.dumps(good).encode())

    events = await eventually(lambda: handled(out), what="the valid event")
    assert [(e["id"], e["data"]) for e in events] == [("e1", {"order": 1})]
    durable = durable_of(node)
    await eventually(lambda: stream.settled(durable), what="both settled")
    # Past ack_wait: a message left unacknowledged would come back and count again.
    await asyncio.sleep(1.5)
    stats = source_stats(node)[0]
    assert (stats["received"], stats["published"], stats["dropped"]) == (2, 1, 1)
    info = await stream.consumer(durable)
    assert info.num_redelivered == 0
    assert info.num_ack_pending == 0


async def test_a_consumer_deleted_under_the_source_is_made_again(
    node: Node, tmp_path: Path, stream: Stream
) -> None:
    source = {"kind": "jetstream", "url": NATS_URL, "stream": stream.name,
              "backoff": 0.05, "max_backoff": 0.2}  # fmt: skip
    out = await deploy_recorder(node, tmp_path, source)
    durable = durable_of(node)
    await stream.publish("m", b'{"before": 1}')
    await eventually(lambda: handled(out), what="the first message")

    await stream.js.delete_consumer(stream.name, durable)
    await eventually(
        lambda: source_stats(node)[0]["reconnects"] >= 1 and connected(node),
        within=20,
        what="the source to notice and connect again",
    )
    await eventually(lambda: stream.consumer(durable), what="the consumer made again")
    await stream.publish("m", b'{"after": 1}')
    events = await eventually(lambda: len(handled(out)) >= 2 and handled(out), what="the second")
    assert [e["data"] for e in events] == [{"before": 1}, {"after": 1}]
    assert "JetStream" in source_stats(node)[0]["last_error"]
