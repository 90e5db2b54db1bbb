"""Idle footprint: what a node costs while nothing happens.

``python -m bench.idle_bench`` starts a fresh ``triggerfish up``, deploys ``--functions``
functions (100), each with a topic trigger and a short ``idle_ttl``, invokes each once so
every one of them has had an environment, then waits for the environments to be reaped.
Over the next ``--seconds`` (60) with no events it reads, from ``/proc``, every process of
the node's tree: how many there are, their resident memory, and the CPU time they used, as
a share of one core.

Beside it, in the same run, the peers of the core suite sit idle on the same Redis: a
Dramatiq worker (2 processes of 8 threads) and a Celery worker (prefork, 2 children), each
with its no-op tasks declared and an empty queue. They hold their processes whatever the
load (no scaling to zero), so their process count and memory are the floor they keep.

    python -m bench.idle_bench [--functions 100] [--seconds 60] [--idle-ttl 5] [--no-peers]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from bench.invoke_bench import cpu_ticks, deployed_node, process_tree, stat_fields

HANDLER = "def handler(event, context):\n    return {'ok': True}\n"
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class Footprint:
    processes: int
    rss_mb: float
    cpu_percent: float  # of one core, over the window
    window_s: float


def cpu_seconds(pid: int) -> float:
    """User + system time of ``pid`` and of its children that it has waited for."""
    fields = stat_fields(pid)
    return 0.0 if fields is None else cpu_ticks(fields, children=True) / TICKS


def rss_bytes(pid: int) -> int:
    try:
        resident = Path(f"/proc/{pid}/statm").read_text().split()[1]
    except OSError:
        return 0
    return int(resident) * PAGE


def measure(roots: list[int], seconds: float) -> Footprint:
    before_pids = process_tree(roots)
    before = sum(cpu_seconds(pid) for pid in before_pids)
    began = time.monotonic()
    time.sleep(seconds)
    window = time.monotonic() - began
    after_pids = process_tree(roots)
    # A process that ended inside the window took its own time with it, unless its parent
    # (in the tree) reaped it: then it is in the parent's cutime. Both ways are counted.
    after = sum(cpu_seconds(pid) for pid in after_pids)
    return Footprint(
        processes=len(after_pids),
        rss_mb=sum(rss_bytes(pid) for pid in after_pids) / 2**20,
        cpu_percent=100.0 * max(0.0, after - before) / window,
        window_s=window,
    )


def write_project(root: Path, functions: int, idle_ttl: float) -> Path:
    project = root / "project"
    code = project / "idle"
    code.mkdir(parents=True)
    (code / "main.py").write_text(HANDLER)
    lines = ["functions:"]
    for i in range(functions):
        lines += [
            f"  idle-{i}:",
            "    code: ./idle",
            "    handler: main.handler",
            f"    idle_ttl: {idle_ttl}",
            "    triggers:",
            f"      - topic: idle-{i}",
        ]
    (project / "triggerfish.yaml").write_text("\n".join(lines) + "\n")
    return project


def triggerfish(work: Path, functions: int, idle_ttl: float, seconds: float) -> Footprint:
    project = write_project(work, functions, idle_ttl)
    with deployed_node(work, project, dict(os.environ)) as (process, url, token):
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            for i in range(functions):
                response = client.post(f"/v1/functions/idle-{i}/invoke", json={"i": i})
                response.raise_for_status()
        progress(f"triggerfish: {functions} functions invoked once; waiting for idle_ttl")
        settle(lambda: len(process_tree([process.pid])), idle_ttl)
        return measure([process.pid], seconds)


def settle(count: Callable[[], int], idle_ttl: float) -> None:
    """Wait past ``idle_ttl`` until the number of processes stops falling."""
    time.sleep(idle_ttl + 1.0)
    last = count()
    deadline = time.monotonic() + idle_ttl + 30.0
    while time.monotonic() < deadline:
        time.sleep(2.0)
        now = count()
        if now == last:
            return
        last = now


def peer(name: str, redis_url: str, seconds: float) -> Footprint:
    from bench.peers.celery_peer import CeleryPeer, CelerySession
    from bench.peers.dramatiq_peer import DramatiqPeer, DramatiqSession
    from bench.peers.driver import new_prefix

    prefix = new_prefix(name, "idle")
    session: DramatiqSession | CelerySession = (
        DramatiqPeer(redis_url).open(prefix, results=False)
        if name == "dramatiq"
        else CeleryPeer(redis_url).open(prefix, results=False)
    )
    session.start_workers()
    try:
        time.sleep(5.0)  # imports and broker connections
        session.check()
        return measure(session.workers.pids(), seconds)
    finally:
        session.close()


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--functions", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--idle-ttl", type=float, default=5.0)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    figures: dict[str, Footprint | str] = {}
    with tempfile.TemporaryDirectory(prefix="tfbench-idle-") as work:
        figures["triggerfish"] = triggerfish(
            Path(work), args.functions, args.idle_ttl, args.seconds
        )
    if not args.no_peers:
        for name in ("dramatiq", "celery"):
            progress(f"{name}: idle workers")
            try:
                figures[name] = peer(name, args.redis, args.seconds)
            except Exception as exc:  # a peer that cannot run is reported, not fatal
                figures[name] = f"error: {exc}"

    print(f"\nIdle footprint over {args.seconds:.0f} s with no events")
    print(
        f"(Triggerfish: {args.functions} functions deployed, each invoked once, idle_ttl "
        f"{args.idle_ttl:g} s)\n"
    )
    print(f"{'system':<12} {'processes':>9} {'RSS, MB':>9} {'CPU, % of a core':>17}")
    for name, value in figures.items():
        if isinstance(value, str):
            print(f"{name:<12} {value}")
        else:
            print(
                f"{name:<12} {value.processes:>9} {value.rss_mb:>9.1f} {value.cpu_percent:>17.2f}"
            )
    if args.json:
        args.json.write_text(
            json.dumps(
                {k: (asdict(v) if isinstance(v, Footprint) else v) for k, v in figures.items()},
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
