"""Publish-to-handler latency with the node in this process: the bus-to-worker path alone.

Builds a node (SQLite bus and store, process workers) in a temporary directory,
deploys ``bench/functions``, sends 50 warm-up events, then publishes ``--events``
events to topic ``bench`` straight on the bus at ``--rate`` per second (an absolute
schedule) and takes, per event, the handler's start as the environment reports it
minus the time taken just before the publish call. No HTTP server and no client: what
is left is the bus's commit, the lease, the dispatch, the executor and the
environment. Prints p50, p90, p99 and the maximum, the server's CPU time per event,
and the cyclic garbage collector's passes during the run (count and longest pause),
which are one source of the slowest events.

    python -m bench.latency_probe [--events 2000] [--rate 200] [--no-records]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.triggerfish_core import FUNCTIONS, make_event
from bench.workload import WARMUP_EVENTS, percentile
from triggerfish.config import Settings
from triggerfish.events.structured import event_from_dict
from triggerfish.node import Node

HANDLED_WITHIN = 60.0  # seconds


class Pauses:
    """The collector's passes while installed: (generation, seconds) each."""

    def __init__(self) -> None:
        self.passes: list[tuple[int, float]] = []
        self._began = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.passes.append((info["generation"], time.perf_counter() - self._began))


async def probe(events: int, rate: float, records: bool) -> dict[str, float]:
    started: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="tf-latency-") as scratch:
        node = Node(Settings(data_dir=Path(scratch) / "data", shutdown_grace=1.0))
        record = node.recorder.record

        def noting(*args: Any, **kwargs: Any) -> Any:
            result = args[1]
            for event_id in kwargs["event_ids"]:
                started.setdefault(event_id, result.started_at)
            return record(*args, **kwargs) if records else None

        node.recorder.record = noting  # type: ignore[method-assign]
        await node.start()
        pauses = Pauses()
        try:
            await node.control.deploy_manifest(FUNCTIONS / "triggerfish.yaml")
            warm = [f"warm-{i}" for i in range(WARMUP_EVENTS)]
            for event_id in warm:
                await node.bus.publish(
                    "bench", [event_from_dict({**make_event("w", 0), "id": event_id})]
                )
                await asyncio.sleep(1 / rate)
            await until_handled(started, warm)
            loop = asyncio.get_running_loop()
            sent: dict[str, float] = {}
            gc.callbacks.append(pauses)
            cpu = os.times()
            begin = loop.time()
            for i in range(events):
                delay = begin + i / rate - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                event = event_from_dict(make_event("probe", i))
                sent[event.id] = time.time()
                await node.bus.publish("bench", [event])
            await until_handled(started, list(sent))
            after = os.times()
            gc.callbacks.remove(pauses)
            rss = resident_mb()
        finally:
            await node.stop()
    ms = [(started[k] - t) * 1000 for k, t in sent.items()]
    server = (after.user - cpu.user) + (after.system - cpu.system)
    return {
        "p50_ms": percentile(ms, 50),
        "p90_ms": percentile(ms, 90),
        "p99_ms": percentile(ms, 99),
        "max_ms": max(ms),
        "server_us": server / events * 1e6,
        "gc_passes": float(len(pauses.passes)),
        "gc_longest_ms": max((s for _, s in pauses.passes), default=0.0) * 1000,
        "rss_mb": rss,
        "load": os.getloadavg()[0],
    }


def resident_mb() -> float:
    """This process's resident memory, from ``/proc`` (0 where there is none)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


async def until_handled(started: dict[str, float], ids: list[str]) -> None:
    deadline = time.monotonic() + HANDLED_WITHIN
    while not all(i in started for i in ids):
        if time.monotonic() > deadline:
            missing = sum(i not in started for i in ids)
            raise RuntimeError(
                f"{missing} of {len(ids)} events not handled in {HANDLED_WITHIN:.0f} s"
            )
        await asyncio.sleep(0.02)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=200.0, help="events per second")
    parser.add_argument("--no-records", action="store_true", help="skip invocation records")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the figures here")
    options = parser.parse_args()
    import uvloop

    figures = uvloop.run(probe(options.events, options.rate, not options.no_records))
    f = figures
    print(f"{options.events} events at {options.rate:.0f}/s on the bus, publish to handler start")
    print(
        f"  p50 / p90 / p99 / max   {f['p50_ms']:.3f} / {f['p90_ms']:.3f} /"
        f" {f['p99_ms']:.3f} / {f['max_ms']:.3f} ms"
    )
    print(f"  server CPU per event    {f['server_us']:.0f} us")
    print(f"  GC passes               {f['gc_passes']:.0f}, longest {f['gc_longest_ms']:.2f} ms")
    print(f"  server resident memory  {f['rss_mb']:.0f} MB")
    print(f"  load average            {f['load']:.2f}")
    if options.json is not None:
        options.json.write_text(json.dumps(figures))


if __name__ == "__main__":
    main()
