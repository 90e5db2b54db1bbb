"""Triggerfish as a cluster on this machine: what the shared engines cost, how I/O-bound
work spreads over nodes, and how long a killed node's events take to come back.

Every node is a ``triggerfish up`` process with a data directory of its own; the
PostgreSQL+NATS nodes share a fresh database of the local PostgreSQL and a NATS
JetStream prefix of their own (both removed at the end). Three workloads, each
measured side by side in one run:

- ``noop``: events/s of a no-op function on one SQLite node, one PostgreSQL+NATS node
  and three PostgreSQL+NATS nodes. The events wait in a topic first, then the
  consuming trigger is deployed. On 2 cores three nodes cannot be faster than one;
  this shows what the engines cost. The figure spans the first handler start to the
  last handler end, read from the invocation records (``GET /v1/invocations``, which
  covers every node of a cluster) once the trigger has drained, so that reading them
  does not load the nodes while they work.
- ``io``: the same with a handler that waits 20 ms (I/O-bound) and
  ``max_concurrency: 8`` per node, on one and on three PostgreSQL+NATS nodes.
- ``failover``: three nodes handle a burst of events of 0.5 s each; the node running
  the most invocations is killed (kill -9 of its process group) as soon as one runs
  some; the figure is the time from the kill until every event that node was running
  has been handled by another node (the function writes where and when it starts and
  ends each event), against the lease (the function's timeout plus the lease margin),
  over several runs (a run in which the node had started none is left out).

    python -m bench.cluster_bench [--events 5000] [--io-events 3000] [--failover-runs 5]
                                  [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench.triggerfish_core import (
    Handled,
    InvocationFeed,
    TriggerfishServer,
    expect,
    find_executable,
    make_event,
)

HERE = Path(__file__).resolve().parent
CODE = HERE / "functions-cluster"
NOOP = HERE / "functions" / "noop"
POSTGRES = "postgresql://postgres@127.0.0.1:5432"
NATS = "nats://127.0.0.1:4222"
SHARED_FILES = ("admin.token", "access-keys.key")
BATCH = 500
LEASE_MARGIN = 2.0  # seconds; the failover workload's lease is the timeout plus this
FAILOVER_TIMEOUT = 3  # seconds: the function's timeout in the failover workload


async def _postgres(statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(f"{POSTGRES}/test")
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def _drop_streams(prefix: str) -> None:
    import nats

    client = await nats.connect(NATS)
    try:
        js = client.jetstream()
        for info in await js.streams_info():
            if info.config.name and info.config.name.startswith(prefix):
                await js.delete_stream(info.config.name)
    finally:
        await client.close()


@contextmanager
def cluster(
    size: int, *, shared: bool, env: dict[str, str] | None = None
) -> Iterator[list[TriggerfishServer]]:
    """``size`` started nodes: on SQLite (one node only), or sharing PostgreSQL and NATS."""
    run = uuid.uuid4().hex[:10]
    database, prefix = f"tf_bench_{run}", f"tfb{run}"
    node_env = dict(env or {})
    if shared:
        asyncio.run(_postgres(f'CREATE DATABASE "{database}"'))
        node_env |= {
            "TRIGGERFISH_STORE": f"{POSTGRES}/{database}",
            "TRIGGERFISH_BUS": f"{NATS}?prefix={prefix}",
        }
    exe = find_executable()
    nodes = [TriggerfishServer(exe, env=node_env) for _ in range(size)]
    try:
        first, *others = nodes
        first.start()
        for node in others:
            node.data.mkdir(parents=True, exist_ok=True)
            for name in SHARED_FILES:
                if (first.data / name).exists():
                    shutil.copy2(first.data / name, node.data / name)
            node.start()
        yield nodes
    finally:
        for node in nodes:
            node.stop()
        if shared:
            asyncio.run(_postgres(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            asyncio.run(_drop_streams(prefix))


def client(node: TriggerfishServer) -> httpx.Client:
    return httpx.Client(base_url=node.url, headers=node.headers, timeout=60)


def manifest(folder: Path, function: str, settings: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "triggerfish.yaml"
    body = {"functions": {function: {"handler": "main.handler", "runtime": "python", **settings}}}
    path.write_text(yaml.safe_dump(body))
    return path


def publish(nodes: list[TriggerfishServer], topic: str, events: int, run: str) -> None:
    """``events`` events in batches of ``BATCH``, round robin over the nodes."""
    clients = [client(node) for node in nodes]
    try:
        for index, start in enumerate(range(0, events, BATCH)):
            batch = [make_event(run, i) for i in range(start, min(events, start + BATCH))]
            answer = clients[index % len(clients)].post(
                f"/v1/topics/{topic}/events",
                content=json.dumps(batch),
                headers={"content-type": "application/cloudevents-batch+json"},
            )
            expect(answer, 202)
    finally:
        for c in clients:
            c.close()


def drain_rate(
    nodes: list[TriggerfishServer], code: Path, events: int, scratch: Path, *, timeout: float
) -> float:
    """Events/s of a trigger deployed on a filled topic, from the first handler start to
    the last handler end."""
    topic, run = f"cl-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex[:8]
    with client(nodes[0]) as api:
        expect(api.put(f"/v1/topics/{topic}", json={}), 200)
    publish(nodes, topic, events, run)
    path = manifest(
        scratch / run,
        "drain",
        {
            "code": str(code),
            "max_concurrency": 8,
            "triggers": [{"topic": topic, "start": "earliest", "batch_size": 1}],
        },
    )
    nodes[0].deploy(path)
    with client(nodes[0]) as api:
        # Wait on the trigger's counters, a cheap call; the records are read once it
        # has drained, so reading them costs the nodes nothing while they work.
        deadline = time.monotonic() + timeout
        while not drained(api, "drain"):
            for node in nodes:
                node.check()
            if time.monotonic() > deadline:
                raise RuntimeError(f"{events} events not handled in {timeout:.0f} s")
            time.sleep(0.1)
        handled = Handled()
        feed = InvocationFeed(api, "drain")
        handled.wait_for(feed, {f"{run}-{i}" for i in range(events)}, nodes[0], timeout)
    return events / (handled.last - handled.first)


def drained(api: httpx.Client, function: str) -> bool:
    triggers = expect(api.get("/v1/triggers", params={"function": function}), 200)["triggers"]
    return bool(triggers) and all(t["backlog"] == 0 and t["in_flight"] == 0 for t in triggers)


def busiest(nodes: list[TriggerfishServer]) -> TriggerfishServer:
    """The node running the most invocations, once one runs some (a node may lease every
    event of a small burst, so the one to kill is the one that holds them)."""
    by_url = {node.url: node for node in nodes}
    deadline = time.monotonic() + 30
    with client(nodes[0]) as api:
        while time.monotonic() < deadline:
            rows = expect(api.get("/v1/nodes"), 200)["nodes"]
            running = [r for r in rows if r["state"] == "running" and r["info"].get("busy")]
            if running:
                return by_url[max(running, key=lambda r: r["info"]["busy"])["address"]]
            time.sleep(0.05)
    raise RuntimeError("no node ran an invocation within 30 s")


def ledger_lines(ledger: Path) -> list[tuple[str, str, str, float]]:
    """(what, event id, node, time) of each line the ledger function wrote."""
    if not ledger.exists():
        return []
    rows = []
    for line in ledger.read_text().splitlines():
        what, event_id, node, at = line.split()
        rows.append((what, event_id, node, float(at)))
    return rows


def failover_once(nodes: list[TriggerfishServer], scratch: Path, run: str) -> dict[str, float]:
    """Kill the node that runs the most invocations; seconds from the kill until every
    event it was running at that moment has been handled by another node."""
    ledger = scratch / f"ledger-{run}.txt"
    topic = f"fo-{run}"
    with client(nodes[0]) as api:
        expect(api.put(f"/v1/topics/{topic}", json={}), 200)
    path = manifest(
        scratch / f"fo-{run}",
        f"fo{run}",
        {
            "code": str(CODE / "ledger"),
            "timeout": FAILOVER_TIMEOUT,
            "max_concurrency": 4,
            "environment": {"LEDGER": str(ledger), "WORK_SECONDS": "0.5"},
            "triggers": [{"topic": topic, "batch_size": 1}],
        },
    )
    nodes[0].deploy(path)
    count = 48  # four rounds of 0.5 s on the 12 environments of three nodes
    publish(nodes, topic, count, run)
    victim = busiest(nodes)
    killed = time.time()
    victim.kill()
    deadline = time.monotonic() + 60
    while True:
        rows = ledger_lines(ledger)
        # In flight on the victim: started there before the kill and not ended there
        # before it (an environment in a session of its own may outlive its node and
        # end it later; the event comes again all the same: it was never acknowledged).
        mine = [(what, e, at) for what, e, node, at in rows if node == victim.url and at < killed]
        in_flight = {e for what, e, _ in mine if what == "start"} - {
            e for what, e, _ in mine if what == "end"
        }
        ends: dict[str, float] = {}  # the first end of each event on another node
        for what, e, node, at in rows:
            if what == "end" and node != victim.url:
                ends.setdefault(e, at)
        ended = {e for what, e, _, _ in rows if what == "end"}
        if len(ended) >= count and in_flight <= ends.keys():
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(ended)} of {count} events handled after the kill")
        time.sleep(0.05)
    victim.start()
    taken_over = [ends[e] for e in in_flight]
    return {
        "seconds": max(taken_over) - killed if taken_over else float("nan"),
        "in_flight": len(in_flight),
        "duplicates": sum(1 for row in rows if row[0] == "end") - count,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--io-events", type=int, default=3000)
    parser.add_argument("--failover-runs", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="tf-cluster-bench-") as folder:
        scratch = Path(folder)
        for name, size, shared in (("sqlite x1", 1, False), ("pg+nats x1", 1, True),
                                   ("pg+nats x3", 3, True)):  # fmt: skip
            with cluster(size, shared=shared) as nodes:
                rate = drain_rate(nodes, NOOP, args.events, scratch, timeout=600)
            results[f"noop {name}"] = rate
            print(f"noop  {name:<11} {rate:8.0f} events/s", flush=True)
        for size in (1, 3):
            with cluster(size, shared=True) as nodes:
                rate = drain_rate(nodes, CODE / "sleep20", args.io_events, scratch, timeout=600)
            results[f"io pg+nats x{size}"] = rate
            print(f"io    pg+nats x{size}  {rate:8.0f} events/s", flush=True)
        env = {"TRIGGERFISH_LEASE_MARGIN": str(LEASE_MARGIN)}
        runs = []
        with cluster(3, shared=True, env=env) as nodes:
            for index in range(args.failover_runs):
                runs.append(failover_once(nodes, scratch, f"{index}{uuid.uuid4().hex[:4]}"))
                print(
                    f"failover run {index + 1}: {runs[-1]['seconds']:.2f} s "
                    f"({runs[-1]['in_flight']} events in flight on the killed node)",
                    flush=True,
                )
        results["failover"] = runs
    base = results["noop sqlite x1"]
    lease = FAILOVER_TIMEOUT + LEASE_MARGIN
    measured = [r["seconds"] for r in runs if r["in_flight"]]  # the others kill no work
    p50 = statistics.median(measured) if measured else float("nan")
    print()
    print("| workload | events/s | vs sqlite x1 |")
    print("| --- | ---: | ---: |")
    for key in ("noop sqlite x1", "noop pg+nats x1", "noop pg+nats x3"):
        print(f"| {key} | {results[key]:,.0f} | {results[key] / base:.2f}x |")
    one, three = results["io pg+nats x1"], results["io pg+nats x3"]
    print(f"| io pg+nats x1 | {one:,.0f} | |")
    print(f"| io pg+nats x3 | {three:,.0f} | {three / one:.2f}x of one node |")
    print(f"failover p50 {p50:.2f} s over {len(measured)} runs (lease {lease:.0f} s; target <= "
          f"{lease + 1:.0f} s); duplicates {sum(r['duplicates'] for r in runs)}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
