"""Broker sinks at ``GET /metrics`` of a running server: a Redis broker that takes
the function's emits counts them as published, and a broker on a port where nothing
listens shows as disconnected, its failures rising and its events pending."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from support.metrics import Samples, scrape, value
from support.projects import write_project
from support.server import Server, wait_for
from support.services import free_port, require_port

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

REDIS_URL = "redis://127.0.0.1:6379/0"
EMITTER = """
import json, os

def handler(event, context):
    for target in json.loads(os.environ["TARGETS"]):
        context.emit(target, "thing.done", event)
    return {"ok": True}
"""


@pytest.fixture
def stream() -> Iterator[str]:
    require_port("127.0.0.1", 6379, "Redis")
    name = f"sink-metrics-{uuid.uuid4().hex[:10]}"
    yield name
    client = redis.Redis.from_url(REDIS_URL)
    client.delete(name)
    client.close()


@pytest.fixture
def server(tmp_path: Path, stream: str) -> Iterator[Server]:
    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    targets = [f"out:{stream}", f"gone:{stream}"]
    manifest = write_project(
        tmp_path / "project",
        {"worker": (EMITTER, {"environment": {"TARGETS": json.dumps(targets)}})},
    )
    document: dict[str, Any] = yaml.safe_load(manifest.read_text())
    document["brokers"] = {
        "out": {"kind": "redis", "url": REDIS_URL},
        "gone": {"kind": "redis", "url": dead, "backoff": 0.05, "max_backoff": 0.2},
    }
    manifest.write_text(yaml.safe_dump(document))
    server = Server(tmp_path / "data").start("--deploy", str(manifest))
    yield server
    server.stop()


def test_sink_counters_move_at_metrics(server: Server, stream: str) -> None:
    out = {"kind": "redis", "broker": "out", "url": REDIS_URL}
    gone = {"kind": "redis", "broker": "gone"}
    before = scrape(server)
    assert value(before, "triggerfish_sink_published_total", **out) == 0
    assert value(before, "triggerfish_sink_connected", **out) == 0  # connects on first send
    assert value(before, "triggerfish_sink_failures_total", **gone) == 0

    with server.client() as api:
        for n in range(3):
            response = api.post("/v1/functions/worker/invoke?mode=async", json={"n": n})
            assert response.status_code == 202, response.text

    def published() -> Samples | None:
        samples = scrape(server)
        return samples if value(samples, "triggerfish_sink_published_total", **out) == 3 else None

    after = wait_for(published, what="3 events published to Redis")
    assert value(after, "triggerfish_sink_connected", **out) == 1
    assert value(after, "triggerfish_sink_failures_total", **out) == 0
    assert value(after, "triggerfish_sink_rejected_total", **out) == 0
    assert value(after, "triggerfish_sink_last_published_timestamp_seconds", **out)
    client = redis.Redis.from_url(REDIS_URL)
    assert client.xlen(stream) == 3
    client.close()

    def failures() -> float:
        return value(scrape(server), "triggerfish_sink_failures_total", **gone) or 0.0

    first = wait_for(failures, what="a first failed send to the dead broker")
    wait_for(lambda: failures() > first, what="the failures to keep rising")
    wait_for(
        lambda: value(scrape(server), "triggerfish_sink_pending", **gone) == 3,
        what="the dead broker's 3 events to show as pending",
    )
    samples = scrape(server)
    assert value(samples, "triggerfish_sink_connected", **gone) == 0
    assert value(samples, "triggerfish_sink_published_total", **gone) == 0
    assert value(samples, "triggerfish_sink_reconnects_total", **gone) == 0
