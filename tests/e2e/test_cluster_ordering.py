"""An ordered trigger on two `triggerfish up` nodes (PostgreSQL store, NATS JetStream
bus): one node at a time runs it, per-key order holds, and when that node is killed
(kill -9) the other takes over without a key's later event running before an earlier
one was handled."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.cluster import POSTGRES, Cluster
from support.projects import write_project
from support.server import Server, wait_for
from support.services import POSTGRES_USER

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]

ORDERED = """
import json, os, time

def handler(event, context):
    time.sleep(0.002)
    with open(os.environ["LEDGER"], "a") as out:
        out.write(json.dumps(event["data"]) + "\\n")
"""
KEYS = 20
EVENTS = 1200
BATCH = 100


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("ordered-cluster")
    env = {"TRIGGERFISH_LEASE_MARGIN": "2", "TRIGGERFISH_LEADER_LEASE": "2"}
    made = Cluster(root, size=2, env=env)
    try:
        made.start()
        yield made
    finally:
        made.close()


def _holder(cluster: Cluster, trigger_id: str) -> str | None:
    async def read() -> str | None:
        import asyncpg

        host, port = POSTGRES
        conn = await asyncpg.connect(host=host, port=port, user=POSTGRES_USER,
                                     database=cluster.database)  # fmt: skip
        try:
            value = await conn.fetchval(
                "SELECT holder FROM tf_leases WHERE name = $1", f"trigger:{trigger_id}"
            )
            return str(value) if value is not None else None
        finally:
            await conn.close()

    return asyncio.run(read())


def _node_of(cluster: Cluster, node_id: str) -> Server:
    first = cluster.nodes[0]
    with first.client() as api:
        rows = api.get("/v1/nodes").json()["nodes"]
    (address,) = [row["address"] for row in rows if row["id"] == node_id]
    (node,) = [n for n in cluster.nodes if n.url == address]
    return node


def _publish(node: Server, start: int, stop: int) -> None:
    with node.client(timeout=10) as api:
        for first in range(start, stop, BATCH):
            batch = [
                {"specversion": "1.0", "id": f"o{n}", "source": "/ordered", "type": "tick",
                 "data": {"k": n % KEYS, "n": n}}
                for n in range(first, min(first + BATCH, stop))
            ]  # fmt: skip
            answer = api.post(
                "/v1/topics/ordered/events",
                content=json.dumps(batch),
                headers={"content-type": "application/cloudevents-batch+json"},
            )
            assert answer.status_code == 202, answer.text


def _handled(ledger: Path) -> list[dict[str, int]]:
    if not ledger.exists():
        return []
    return [json.loads(line) for line in ledger.read_text().splitlines() if line.endswith("}")]


def test_an_ordered_trigger_keeps_key_order_across_a_node_killed(
    cluster: Cluster, tmp_path: Path
) -> None:
    ledger = tmp_path / "ordered.txt"
    settings: dict[str, object] = {
        "environment": {"LEDGER": str(ledger)},
        "max_concurrency": 4,
        "timeout": 3,
        "triggers": [{"topic": "ordered", "ordering": {"key": "data.k"}}],
    }
    manifest = write_project(tmp_path / "project", {"ordered": (ORDERED, settings)})
    cluster.nodes[0].cli("deploy", str(manifest), check=True)
    holder_id = wait_for(lambda: _holder(cluster, "ordered.ordered"), what="a lease holder")
    holder = _node_of(cluster, holder_id)
    other = next(n for n in cluster.nodes if n is not holder)

    _publish(other, 0, EVENTS // 2)
    wait_for(lambda: len(_handled(ledger)) >= EVENTS // 8, timeout=60, what="a first part")
    holder.kill9()
    _publish(other, EVENTS // 2, EVENTS)
    wait_for(
        lambda: {e["n"] for e in _handled(ledger)} >= set(range(EVENTS)),
        timeout=90, interval=0.5, what="every event handled",
    )  # fmt: skip
    assert _holder(cluster, "ordered.ordered") != holder_id

    # Each event ran only once every earlier event of its key had run (at least once:
    # the killed node's last invocations may run again).
    seen: dict[int, set[int]] = defaultdict(set)
    for event in _handled(ledger):
        key, n = event["k"], event["n"]
        earlier = set(range(key, n, KEYS))
        assert earlier <= seen[key], f"event {n} of key {key} ran before {earlier - seen[key]}"
        seen[key].add(n)
