"""Redriving one dead-lettered event, through the API and the CLI of a real node, on the
embedded SQLite bus and on NATS JetStream: it runs again in its trigger, leaves the
listing, survives a restart of the node, and a later redrive of all sends only the
others."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.cluster import Cluster
from support.projects import write_project
from support.server import Server, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FLAKY = """
import os

def handler(event, context):
    if not os.path.exists(os.environ["FIXED"]):
        raise ValueError("cannot process " + event["id"])
    return "done"
"""

DLQ = "jobs-failed"
IDS = ("job-1", "job-2", "job-3")


@pytest.fixture(params=["sqlite", "nats"])
def node(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Server, Path]]:
    fixed = tmp_path / "fixed"
    manifest = write_project(
        tmp_path / "project",
        {
            "flaky": (
                FLAKY,
                {
                    "environment": {"FIXED": str(fixed)},
                    "triggers": [
                        {"topic": "jobs", "retry": {"max_attempts": 1}, "dead_letter": DLQ}
                    ],
                },
            )
        },
        topics={"jobs": {}},
    )
    if request.param == "sqlite":
        server = Server(tmp_path / "data").start("--deploy", str(manifest))
        try:
            yield server, fixed
        finally:
            server.stop()
        return
    cluster = Cluster(tmp_path, size=1)  # NATS bus, PostgreSQL store
    try:
        cluster.start("--deploy", str(manifest))
        yield cluster.nodes[0], fixed
    finally:
        cluster.close()


def dead_letters(api: httpx.Client) -> dict[str, Any]:
    (found,) = api.get("/v1/dlq", params={"topic": DLQ}).json()["dead_letters"]
    return dict(found)


def listed(api: httpx.Client) -> list[str]:
    """The ids of the dead letters waiting, in the topic's order."""
    return [item["event"]["id"] for item in dead_letters(api)["events"]]


def succeeded(api: httpx.Client) -> list[str]:
    page = api.get("/v1/invocations", params={"function": "flaky", "status": "ok"}).json()
    return sorted(e for r in page["invocations"] for e in r["event_ids"])


def test_one_event_is_redriven_alone(node: tuple[Server, Path]) -> None:
    server, fixed = node
    with server.client() as api:
        for event_id in IDS:
            published = api.post(
                "/v1/topics/jobs/events",
                json={"specversion": "1.0", "id": event_id, "source": "t", "type": "job"},
                headers={"Content-Type": "application/cloudevents+json"},
            )
            assert published.status_code == 202, published.text
        wait_for(lambda: sorted(listed(api)) == list(IDS), what="the three jobs dead-lettered")
        first, middle, last = listed(api)

        unknown = api.post(f"/v1/dlq/{DLQ}/redrive", params={"event": "no-such-job"})
        assert unknown.status_code == 404
        assert unknown.headers["content-type"].startswith("application/problem+json")
        assert "no-such-job" in unknown.json()["detail"]

    fixed.write_text("yes")  # the fix
    done = server.cli("dlq", "redrive", DLQ, "--event", middle, "--json", check=True)
    assert json.loads(done.stdout) == {"topic": DLQ, "event": middle, "redriven": 1, "skipped": 0}

    with server.client() as api:
        wait_for(lambda: succeeded(api) == [middle], what="the middle job to run again")
        assert listed(api) == [first, last]
        assert dead_letters(api)["pending"] == 2
        # Redriven already: a second request for it finds nothing waiting.
        again = api.post(f"/v1/dlq/{DLQ}/redrive", params={"event": middle})
        assert again.status_code == 404

    server.terminate()
    server.start()
    with server.client() as api:
        assert listed(api) == [first, last]
        assert dead_letters(api)["pending"] == 2
    shown = server.cli("dlq", "list", DLQ, check=True)
    assert first in shown.stdout
    assert last in shown.stdout
    assert middle not in shown.stdout

    everything = server.cli("dlq", "redrive", DLQ, "--json", check=True)
    assert json.loads(everything.stdout)["redriven"] == 2
    with server.client() as api:
        wait_for(
            lambda: succeeded(api) == ["job-1", "job-2", "job-3"],
            what="the first and last jobs to run again",
        )
        assert dead_letters(api)["pending"] == 0
        assert listed(api) == []
        # The middle job ran once more in all: the redrive of all did not send it again.
        page = api.get("/v1/invocations", params={"function": "flaky"}).json()
        runs = [r["status"] for r in page["invocations"] if middle in r["event_ids"]]
        assert sorted(runs) == ["error", "ok"]
