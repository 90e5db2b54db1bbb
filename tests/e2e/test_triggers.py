"""Topic triggers: filters, batches and replay, against a running server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.projects import write_project
from support.server import Server, wait_for

pytestmark = pytest.mark.e2e

RECORD = """
import json, os

def handler(event, context):
    batch = event if isinstance(event, list) else [event]
    with open(os.environ["OUT"], "a") as out:
        out.write(json.dumps([e["id"] for e in batch]) + "\\n")
"""


PARTIAL = """
import json, os

def handler(event, context):
    failures = []
    with open(os.environ["OUT"], "a") as out:
        for record in event["Records"]:
            body = json.loads(record["body"])
            tries = record["attributes"]["ApproximateReceiveCount"]
            out.write(json.dumps([record["messageId"], tries]) + "\\n")
            if body.get("flaky") and tries == "1":
                failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
"""
BRIDGE = """
import json, os

def handler(event, context):
    with open(os.environ["OUT"], "a") as out:
        out.write(json.dumps([event["detail-type"], event["source"], event["detail"]]) + "\\n")
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("triggers")
    manifest = write_project(
        root / "project",
        {
            "picky": (
                RECORD,
                {
                    "environment": {"OUT": str(root / "picky.txt")},
                    "triggers": [
                        {
                            "topic": "readings",
                            "pattern": {
                                "type": ["reading"],
                                "data": {"celsius": [{"numeric": [">", 30]}]},
                            },
                        }
                    ],
                },
            ),
            "batcher": (
                RECORD,
                {
                    "environment": {"OUT": str(root / "batcher.txt")},
                    "triggers": [{"topic": "bulk", "batch_size": 3}],
                },
            ),
            "sqsish": (
                PARTIAL,
                {
                    "environment": {"OUT": str(root / "sqsish.txt")},
                    "triggers": [
                        {
                            "topic": "jobs",
                            "batch_size": 4,
                            "event_format": "sqs",
                            "retry": {"backoff": 0.05, "max_backoff": 0.1},
                        }
                    ],
                },
            ),
            "bridge": (
                BRIDGE,
                {
                    "environment": {"OUT": str(root / "bridge.txt")},
                    "triggers": [{"topic": "bulk", "event_format": "eventbridge"}],
                },
            ),
        },
        topics={"readings": {}, "bulk": {}, "jobs": {}},
    )
    server = Server(root / "data").start("--deploy", str(manifest))
    server.root = root  # type: ignore[attr-defined]
    yield server
    server.stop()


def lines(path: Path) -> list[list[str]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def publish(api: httpx.Client, topic: str, events: list[dict[str, object]]) -> None:
    response = api.post(
        f"/v1/topics/{topic}/events",
        content=json.dumps(events),
        headers={"Content-Type": "application/cloudevents-batch+json"},
    )
    assert response.status_code == 202, response.text


def test_pattern_runs_the_function_only_for_matching_events(server: Server) -> None:
    out = server.root / "picky.txt"  # type: ignore[attr-defined]
    readings = [
        ("r1", "reading", 25),
        ("r2", "reading", 31),
        ("r3", "alarm", 40),
        ("r4", "reading", 35.5),
        ("r5", "reading", 30),
    ]
    with server.client() as api:
        publish(
            api,
            "readings",
            [
                {
                    "specversion": "1.0",
                    "id": i,
                    "source": "sensor/7",
                    "type": t,
                    "data": {"celsius": c},
                }
                for i, t, c in readings
            ],
        )
        wait_for(
            lambda: all(
                t["backlog"] == 0 and t["in_flight"] == 0
                for t in api.get("/v1/triggers", params={"function": "picky"}).json()["triggers"]
            ),
            what="the trigger to drain",
        )
    handled = wait_for(lambda: lines(out) if len(lines(out)) >= 2 else None, what="2 matches")
    assert sorted(ids[0] for ids in handled) == ["r2", "r4"]


def test_batch_size_delivers_lists(server: Server) -> None:
    out = server.root / "batcher.txt"  # type: ignore[attr-defined]
    with server.client() as api:
        publish(
            api,
            "bulk",
            [{"specversion": "1.0", "id": f"b{i}", "source": "s", "type": "t"} for i in range(6)],
        )
    batches = wait_for(
        lambda: lines(out) if sum(map(len, lines(out))) >= 6 else None, what="all six events"
    )
    assert sorted(i for batch in batches for i in batch) == [f"b{i}" for i in range(6)]
    assert max(len(batch) for batch in batches) > 1
    assert all(len(batch) <= 3 for batch in batches)


def test_replay_delivers_a_topic_again_to_one_trigger(server: Server) -> None:
    out = server.root / "picky.txt"  # type: ignore[attr-defined]
    before = len(lines(out))
    with server.client() as api:
        first = api.get("/v1/topics/readings/events").json()["events"][0]["offset"]
    result = server.cli(
        "replay", "readings", "--trigger", "picky.readings", "--offset", str(first), check=True
    )
    assert "5 event(s)" in result.stdout
    wait_for(lambda: len(lines(out)) >= before + 2, what="the matching events again")
    assert sorted(ids[0] for ids in lines(out)[before:]) == ["r2", "r4"]


def test_replay_of_an_unknown_trigger_is_a_clear_error(server: Server) -> None:
    result = server.cli("replay", "readings", "--trigger", "nobody", "--offset", "1")
    assert result.returncode == 3
    assert "no trigger 'nobody'" in result.stderr


def test_sqs_batches_retry_only_the_items_the_function_reports(server: Server) -> None:
    out = server.root / "sqsish.txt"  # type: ignore[attr-defined]
    with server.client() as api:
        publish(api, "jobs", [
            {"specversion": "1.0", "id": f"j{i}", "source": "s", "type": "job",
             "data": {"flaky": i == 2}} for i in range(4)
        ])  # fmt: skip
    seen = wait_for(
        lambda: lines(out) if ["j2", "2"] in lines(out) else None, what="the reported item retried"
    )
    assert sorted(i for i, tries in seen if tries == "1") == ["j0", "j1", "j2", "j3"]
    assert [i for i, tries in seen if tries != "1"] == ["j2"]


def test_eventbridge_format_gives_detail_type_and_detail(server: Server) -> None:
    out = server.root / "bridge.txt"  # type: ignore[attr-defined]
    with server.client() as api:
        publish(
            api,
            "bulk",
            [
                {
                    "specversion": "1.0",
                    "id": "eb1",
                    "source": "shop",
                    "type": "order.created",
                    "data": {"total": 5},
                }
            ],
        )
    seen = wait_for(lambda: [x for x in lines(out) if x[2] == {"total": 5}], what="the event")
    assert seen[0][:2] == ["order.created", "shop"]
