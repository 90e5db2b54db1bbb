"""``python -m bench``: the core suite, Triggerfish beside Celery and Dramatiq.

Runs each workload (throughput, latency, sync invoke) for every selected system in
turn, repeats the whole round ``--repeat`` times (interleaved, so drift of the machine
falls on every system alike), prints the table and optionally writes the figures as
JSON. ``--all`` then runs every other suite of ``bench/`` (``bench/*_bench.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from rich.console import Console

from bench.peers.driver import Peer, PeerDriver
from bench.report import SYSTEMS, Runs, render, to_json
from bench.triggerfish_core import TriggerfishCore
from bench.workload import WORKLOADS, Plan, Result, Workload

REDIS_HINT = (
    "redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save '' --appendonly no"
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short run for smoke testing")
    parser.add_argument(
        "--only",
        action="append",
        choices=SYSTEMS,
        help="run only this system (may be given more than once)",
    )
    parser.add_argument(
        "--workload", action="append", choices=WORKLOADS, help="run only this workload"
    )
    parser.add_argument("--repeat", type=int, help="rounds per workload (default 3, quick 1)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the figures here")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="peers' broker")
    parser.add_argument("--all", action="store_true", help="then run the other bench suites")
    return parser.parse_args(argv)


def redis_problem(url: str) -> str:
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        return f"Redis is not reachable at {url} ({exc}); start it: {REDIS_HINT}"
    return ""


Runner = Callable[[], Result]


def runners(args: argparse.Namespace, plan: Plan) -> dict[str, dict[Workload, Runner]]:
    systems = args.only or list(SYSTEMS)
    out: dict[str, dict[Workload, Runner]] = {}
    if "triggerfish" in systems:
        core = TriggerfishCore(plan)
        out["triggerfish"] = {
            "throughput": core.throughput,
            "latency": core.latency,
            "sync": core.sync,
        }
    wanted = [name for name in ("celery", "dramatiq") if name in systems]
    problem = redis_problem(args.redis) if wanted else ""
    for name in wanted:
        try:
            peer = load_peer(name, args.redis)
        except ImportError as exc:
            reason = f"{name} is not installed ({exc}); pip install -e '.[bench]'"
            out[name] = dict.fromkeys(WORKLOADS, functools.partial(Result.failed, reason))
            continue
        driver = PeerDriver(peer, args.redis, plan)
        out[peer.name] = {
            "throughput": driver.throughput,
            "latency": driver.latency,
            "sync": driver.sync,
        }
        if problem:
            out[peer.name] = dict.fromkeys(WORKLOADS, lambda: Result.failed(problem))
    return out


def load_peer(name: str, url: str) -> Peer:
    """A peer's driver, imported only when it runs: ``--only triggerfish`` needs
    neither Celery nor Dramatiq installed."""
    if name == "celery":
        from bench.peers.celery_peer import CeleryPeer

        return CeleryPeer(url)
    from bench.peers.dramatiq_peer import DramatiqPeer

    return DramatiqPeer(url)


def peer_settings() -> dict[str, dict[str, Any]]:
    settings: dict[str, dict[str, Any]] = {"triggerfish": {"max_concurrency": 8, "batch_size": 1}}
    with contextlib.suppress(ImportError):
        from bench.peers.celery_peer import PREFETCH_MULTIPLIER

        settings["celery"] = {
            "pool": "prefork",
            "concurrency": 2,
            "prefetch_multiplier": PREFETCH_MULTIPLIER,
        }
    with contextlib.suppress(ImportError):
        from bench.peers.dramatiq_peer import PREFETCH, THREADS

        settings["dramatiq"] = {"processes": 2, "threads": THREADS, "prefetch": PREFETCH}
    return settings


def run_one(runner: Runner) -> Result:
    try:
        return runner()
    except Exception as exc:  # one system failing must not stop the others
        return Result.failed(f"{type(exc).__name__}: {exc}")


def summary(result: Result) -> str:
    if result.status != "ok":
        return f"{result.status}: {result.reason.splitlines()[0] if result.reason else ''}"
    keys = ("events_per_s", "requests_per_s", "p50_ms", "p99_ms")
    return ", ".join(f"{k}={result.figures[k]:.2f}" for k in keys if k in result.figures)


def run_other_suites(console: Console) -> int:
    """Run every ``bench/*_bench.py`` as ``python -m bench.NAME``; how many failed."""
    failures = 0
    for path in sorted(Path(__file__).parent.glob("*_bench.py")):
        console.rule(f"python -m bench.{path.stem}")
        done = subprocess.run([sys.executable, "-m", f"bench.{path.stem}"], check=False)
        failures += done.returncode != 0
    return failures


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Stopped from outside, still stop every server and worker this run started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    plan = Plan.quick() if args.quick else Plan()
    repeat = args.repeat or (1 if args.quick else 3)
    workloads = args.workload or list(WORKLOADS)
    console = Console()
    log = Console(stderr=True)
    table = runners(args, plan)
    runs: Runs = {system: {w: [] for w in workloads} for system in table}
    for workload in workloads:
        for round_ in range(1, repeat + 1):
            for system, by_workload in table.items():
                done = runs[system][workload]
                if done and done[0].status == "n/a":
                    continue  # nothing to repeat
                began = time.perf_counter()
                done.append(run_one(by_workload[workload]))
                took = time.perf_counter() - began
                log.log(
                    f"{system} {workload} {round_}/{repeat} ({took:.0f} s): {summary(done[-1])}"
                )
    render(runs, console)
    if args.json:
        document = to_json(runs, plan, repeat=repeat, settings=peer_settings())
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(document, indent=2) + "\n")
        console.print(f"figures written to {args.json}")
    errors = any(r.status == "error" for w in runs.values() for rs in w.values() for r in rs)
    failed = run_other_suites(console) if args.all else 0
    return 1 if errors or failed else 0


if __name__ == "__main__":
    sys.exit(main())
