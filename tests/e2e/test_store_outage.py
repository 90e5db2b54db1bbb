"""A two-node cluster whose PostgreSQL goes away for several seconds while events are
published and handled (the nodes reach it through a proxy the test cuts).

What a user sees: the nodes stay up; event ingest on a topic does not need the store
and keeps answering 202, and what the nodes had resolved keeps running; what does need
the store (a webhook's definition, the S3 API, the control API) answers 503 with
Retry-After; once PostgreSQL is back, the nodes recover by themselves: every accepted
event was handled and its invocation record is listed, both heartbeats are fresh, one
node leads and the schedule fires again, and a deploy is in force on both nodes."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
import yaml
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError

from support.cluster import POSTGRES, Cluster
from support.projects import write_project
from support.proxy import TcpProxy
from support.server import Server, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]

KEEP = """
import os

def handler(event, context):
    with open(os.environ["LEDGER"], "a") as out:
        out.write(event["id"] + " " + os.environ["MARK"] + "\\n")
    return {"mark": os.environ["MARK"]}
"""
TICK = """
import os

def handler(event, context):
    with open(os.environ["LEDGER"], "a") as out:
        out.write(event["time"] + "\\n")
"""
OUTAGE = 6.0  # seconds: longer than a heartbeat takes to look gone and a lease to expire
LEADER_LEASE = 2.0


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def handled(ledger: Path) -> set[str]:
    return {line.split(" ")[0] for line in lines(ledger)}


def slots(ticks: Path) -> list[datetime]:
    return [datetime.fromisoformat(line.replace("Z", "+00:00")) for line in lines(ticks)]


def write_manifest(root: Path, ledger: Path, ticks: Path, *, mark: str) -> Path:
    manifest = write_project(
        root,
        {
            "keep": (KEEP, {"environment": {"LEDGER": str(ledger), "MARK": mark}, "timeout": 3,
                            "triggers": [{"topic": "orders"}]}),
            "tick": (TICK, {"environment": {"LEDGER": str(ticks)},
                            "triggers": [{"schedule": "rate(1 second)"}]}),
        },
        topics={"orders": {}},
    )  # fmt: skip
    document = yaml.safe_load(manifest.read_text())
    document["webhooks"] = {"hook": {"topic": "orders"}}
    manifest.write_text(yaml.safe_dump(document, sort_keys=False))
    return manifest


class Publisher:
    """Publishes events on ``orders`` through every node in turn, on a thread, until
    stopped; keeps each answer."""

    def __init__(self, nodes: list[Server]) -> None:
        self._nodes = nodes
        self.answers: list[tuple[str, float, httpx.Response]] = []  # id, when sent, answer
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="publisher", daemon=True)

    def __enter__(self) -> Publisher:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def accepted(self) -> set[str]:
        return {event_id for event_id, _, answer in self.answers if answer.is_success}

    def sent_between(self, start: float, end: float) -> list[tuple[str, httpx.Response]]:
        return [(i, answer) for i, sent, answer in self.answers if start <= sent <= end]

    def _run(self) -> None:
        clients = [node.client(timeout=15) for node in self._nodes]
        try:
            for number in itertools.count():
                if self._stop.wait(0.02):  # pacing: some 50 events a second
                    return
                event_id = f"order-{number}"
                sent = time.monotonic()
                answer = clients[number % len(clients)].post(
                    "/v1/topics/orders/events",
                    json={"specversion": "1.0", "id": event_id, "source": "/t", "type": "t"},
                    headers={"content-type": "application/cloudevents+json"},
                )
                self.answers.append((event_id, sent, answer))
        finally:
            for client in clients:
                client.close()


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    with TcpProxy(POSTGRES) as made:
        yield made


@pytest.fixture
def cluster(tmp_path: Path, proxy: TcpProxy) -> Iterator[Cluster]:
    made = Cluster(
        tmp_path,
        size=2,
        env={"TRIGGERFISH_LEASE_MARGIN": "3", "TRIGGERFISH_LEADER_LEASE": str(LEADER_LEASE)},
    )
    # The cluster's database, reached through the proxy (the helper creates and drops it
    # directly).
    for node in made.nodes:
        node.env["TRIGGERFISH_STORE"] = made.store_url.replace(
            f"{POSTGRES[0]}:{POSTGRES[1]}", proxy.address
        )
    try:
        yield made
    finally:
        made.close()


def nodes_view(node: Server) -> httpx.Response:
    with node.client(timeout=5) as api:
        return api.get("/v1/nodes")


def recorded_events(node: Server, function: str) -> set[str]:
    """The event ids of every invocation record of ``function``."""
    found: set[str] = set()
    cursor = "0"
    with node.client() as api:
        while True:
            answer = api.get(
                "/v1/invocations", params={"function": function, "after": cursor, "limit": 1000}
            )
            assert answer.status_code == 200, answer.text
            page = answer.json()
            for row in page["invocations"]:
                found.update(row["event_ids"])
            if not page["invocations"]:
                return found
            cursor = page["next"]


def webhook(node: Server, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{node.url}/v1/webhooks/hook", json=body, timeout=15)


def s3_client(node: Server) -> BaseClient:
    """An S3 client of ``node`` with a key of its own, that gives up after one retry."""
    with node.client() as api:
        key = api.post("/v1/keys", json={"name": "outage"}).json()
    client: BaseClient = boto3.client(
        "s3",
        endpoint_url=node.url,
        aws_access_key_id=key["id"],
        aws_secret_access_key=key["secret"],
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )
    return client


def assert_up(cluster: Cluster) -> None:
    for node in cluster.nodes:
        assert node.process is not None
        assert node.process.poll() is None, node.output()


def assert_unavailable(answer: httpx.Response) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"] == "1"
    assert "store" in answer.json()["detail"]


def test_nodes_ride_out_a_store_outage(cluster: Cluster, proxy: TcpProxy, tmp_path: Path) -> None:
    ledger, ticks = tmp_path / "ledger.txt", tmp_path / "ticks.txt"
    cluster.start("--deploy", str(write_manifest(tmp_path / "v1", ledger, ticks, mark="one")))
    first, second = cluster.nodes
    s3 = s3_client(first)
    s3.create_bucket(Bucket="uploads")
    wait_for(lambda: ticks.exists(), what="the schedule's first slot")

    with Publisher(cluster.nodes) as publisher:
        wait_for(lambda: handled(ledger) & publisher.accepted(), what="events handled")

        proxy.cut()
        cut_at, cut_wall = time.monotonic(), datetime.now().astimezone()
        # What needs the store answers 503 with Retry-After: a webhook (its definition
        # is read per request), the S3 API (a cluster's buckets are in the store) and
        # the control API.
        assert_unavailable(webhook(first, {"during": True}))
        assert_unavailable(nodes_view(second))
        with pytest.raises(ClientError) as refused:
            s3.put_object(Bucket="uploads", Key="during.txt", Body=b"during")
        assert refused.value.response["Error"]["Code"] == "ServiceUnavailable"
        assert refused.value.response["ResponseMetadata"]["HTTPHeaders"]["retry-after"] == "1"
        # The outage lasts OUTAGE seconds; events are published and handled all along.
        wait_for(
            lambda: time.monotonic() - cut_at >= OUTAGE,
            timeout=OUTAGE + 5,
            what="the end of the outage",
        )
        during = publisher.sent_between(cut_at, time.monotonic())
        assert during
        assert all(answer.status_code == 202 for _, answer in during), [
            (i, a.status_code, a.text) for i, a in during if a.status_code != 202
        ]
        assert handled(ledger) & {event_id for event_id, _ in during}, "nothing handled"
        assert_up(cluster)

        proxy.restore()
        restored_at = datetime.now().astimezone()

        def recovered() -> bool:
            views = [nodes_view(node) for node in cluster.nodes]
            if any(view.status_code != 200 for view in views):
                return False
            rows = views[0].json()["nodes"]
            fresh = all(r["state"] == "running" and r["heartbeat_age"] < 2 for r in rows)
            return fresh and sum(1 for r in rows if r["info"].get("leader")) == 1

        wait_for(recovered, timeout=15, interval=0.2, what="both nodes alive, one leading")
        hooked = webhook(second, {"after": True})
        assert hooked.status_code == 202, hooked.text
        s3.put_object(Bucket="uploads", Key="after.txt", Body=b"after")
        assert s3.get_object(Bucket="uploads", Key="after.txt")["Body"].read() == b"after"
        wait_for(
            lambda: any(slot > restored_at for slot in slots(ticks)),
            timeout=10,
            what="a slot fired after the store came back",
        )

    accepted = publisher.accepted() | {hooked.json()["id"]}
    assert len(publisher.answers) > 100
    assert all(answer.status_code == 202 for _, _, answer in publisher.answers)
    wait_for(lambda: accepted <= handled(ledger), timeout=20, what="every accepted event handled")
    wait_for(
        lambda: accepted <= recorded_events(second, "keep"),
        timeout=10,
        what="the record of every accepted event",
    )
    # The leader gave the lease up (and stopped the schedule) when it could not renew
    # it, and took it again once it could; the slots' ids are deterministic: no slot
    # ran twice, whichever node led.
    led_without_lease = cut_wall + timedelta(seconds=2 * LEADER_LEASE)
    assert [s for s in slots(ticks) if led_without_lease <= s < restored_at] == []
    assert [slot for slot, n in Counter(slots(ticks)).items() if n > 1] == []

    # A deploy made after the outage is in force on both nodes.
    first.cli("deploy", str(write_manifest(tmp_path / "v2", ledger, ticks, mark="two")), check=True)

    def runs_two(node: Server) -> bool:
        with node.client() as api:
            answer = api.post("/v1/functions/keep/invoke", json={"id": "probe"})
        assert answer.status_code == 200, answer.text
        return bool(answer.json() == {"mark": "two"})

    for node in cluster.nodes:
        wait_for(lambda node=node: runs_two(node), timeout=5, what=f"{node.url} runs v2")
    assert_up(cluster)
