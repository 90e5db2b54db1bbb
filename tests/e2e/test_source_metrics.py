"""Broker sources at ``GET /metrics`` of a running server: a Redis Streams source
counts what it received, published and dropped, and a source whose broker does not
answer shows as disconnected with its reconnects rising."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
import redis

from support.metrics import Samples, scrape, value
from support.projects import write_project
from support.server import Server, wait_for
from support.services import free_port, require_port

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

REDIS_URL = "redis://127.0.0.1:6379/0"
COUNT = """
def handler(event, context):
    return event["data"]["n"]
"""


def cloudevent(n: int) -> bytes:
    return json.dumps(
        {"specversion": "1.0", "id": f"order-{n}", "source": "/shop", "type": "order.paid",
         "data": {"n": n}}
    ).encode()  # fmt: skip


@pytest.fixture
def stream() -> Iterator[str]:
    require_port("127.0.0.1", 6379, "Redis")
    name = f"metrics-{uuid.uuid4().hex[:10]}"
    yield name
    client = redis.Redis.from_url(REDIS_URL)
    client.delete(name)
    client.close()


@pytest.fixture
def server(tmp_path_factory: pytest.TempPathFactory, stream: str) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("source-metrics")
    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    triggers = [
        {"name": "orders", "start": "earliest",
         "source": {"kind": "redis", "url": REDIS_URL, "stream": stream,
                    "format": "cloudevent"}},
        {"name": "nowhere",
         "source": {"kind": "redis", "url": dead, "stream": stream,
                    "backoff": 0.05, "max_backoff": 0.2}},
    ]  # fmt: skip
    manifest = write_project(root / "project", {"count": (COUNT, {"triggers": triggers})})
    server = Server(root / "data")
    server.start("--deploy", str(manifest))
    yield server
    server.stop()


def test_redis_source_counts_move_at_metrics(server: Server, stream: str) -> None:
    orders = {"kind": "redis", "trigger": "count.orders", "url": REDIS_URL}
    wait_for(
        lambda: value(scrape(server), "triggerfish_source_connected", **orders) == 1,
        what="the redis source to connect",
    )
    before = scrape(server)
    assert value(before, "triggerfish_source_connections_total", **orders) == 1
    assert value(before, "triggerfish_source_messages_total", outcome="received", **orders) == 0

    client = redis.Redis.from_url(REDIS_URL)
    for n in range(5):
        client.xadd(stream, {"data": cloudevent(n)})
    client.xadd(stream, {"data": b"not a cloudevent"})
    client.close()

    def published() -> Samples | None:
        samples = scrape(server)
        done = value(samples, "triggerfish_source_messages_total", outcome="published", **orders)
        return samples if done == 5 else None

    after = wait_for(published, what="5 events published by the source")
    assert value(after, "triggerfish_source_messages_total", outcome="received", **orders) == 6
    assert value(after, "triggerfish_source_messages_total", outcome="dropped", **orders) == 1
    assert value(after, "triggerfish_source_reconnects_total", **orders) == 0
    assert value(after, "triggerfish_source_last_message_timestamp_seconds", **orders)
    # The published events reach the function like any topic's.
    wait_for(
        lambda: (
            value(scrape(server), "triggerfish_invocations_total", function="count", status="ok")
            == 5
        ),
        what="5 invocations",
    )


def test_unreachable_broker_shows_disconnected_and_reconnecting(server: Server) -> None:
    nowhere = {"kind": "redis", "trigger": "count.nowhere"}

    def reconnects() -> float:
        found = value(scrape(server), "triggerfish_source_reconnects_total", **nowhere)
        return found or 0.0

    first = wait_for(reconnects, what="a first reconnect")
    wait_for(lambda: reconnects() > first, what="the reconnects to keep rising")
    samples = scrape(server)
    assert value(samples, "triggerfish_source_connected", **nowhere) == 0
    assert value(samples, "triggerfish_source_connections_total", **nowhere) == 0
    assert value(samples, "triggerfish_source_messages_total", outcome="received", **nowhere) == 0
