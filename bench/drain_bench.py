"""The throughput workload's drain with the node in this process: where the CPU goes.

Builds a node (SQLite bus and store, process workers) in a temporary directory,
deploys ``bench/functions``, publishes ``--events`` events to ``bench-tp`` straight on
the bus, then deploys ``bench/functions-tp`` and times until the trigger's backlog is
handled and acknowledged. Prints events per second and the CPU time of this process
(the server: event loop, bus writer, store threads) and of the worker processes per
event. No HTTP server and no client, so the figures move less with the machine's load
than the core benchmark's; ``--no-records`` leaves out invocation records (and their
metrics) to show what they cost.

    python -m bench.drain_bench [--events 20000] [--no-records] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.invoke_bench import process_cpu
from bench.triggerfish_core import FUNCTIONS, FUNCTIONS_TP, make_event
from triggerfish.config import Settings
from triggerfish.events.structured import event_from_dict
from triggerfish.node import Node

BATCH = 500


def worker_cpu(node: Node) -> float:
    """CPU seconds of the node's live worker processes, from ``/proc``."""
    return sum(
        process_cpu(worker.pid)
        for pool in node.executor._pools.values()
        for worker in [*pool.idle, *pool.busy]
    )


async def drain(events: int, records: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="tf-drain-") as scratch:
        node = Node(Settings(data_dir=Path(scratch) / "data", shutdown_grace=1.0))
        if not records:
            node.recorder.record = lambda *args, **kwargs: None  # type: ignore[assignment,method-assign]
        await node.start()
        try:
            await node.control.deploy_manifest(FUNCTIONS / "triggerfish.yaml")
            for start in range(0, events, BATCH):
                batch = [make_event("drain", i) for i in range(start, min(events, start + BATCH))]
                await node.bus.publish("bench-tp", [event_from_dict(e) for e in batch])
            began = time.perf_counter()
            cpu = os.times()
            await node.control.deploy_manifest(FUNCTIONS_TP / "triggerfish.yaml")
            while True:
                groups = await node.bus.groups("bench-tp")
                if groups and groups[0].backlog == 0 and groups[0].in_flight == 0:
                    break
                await asyncio.sleep(0.02)
            elapsed = time.perf_counter() - began
            after = os.times()
            workers = worker_cpu(node)
        finally:
            await node.stop()
    server = (after.user - cpu.user) + (after.system - cpu.system)
    return {
        "events_per_s": events / elapsed,
        "server_us": server / events * 1e6,
        "workers_us": workers / events * 1e6,
        "load": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--no-records", action="store_true", help="skip invocation records")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the figures here")
    options = parser.parse_args()
    import uvloop

    figures = uvloop.run(drain(options.events, not options.no_records))
    what = "without records" if options.no_records else "with records"
    print(f"drain of {options.events} events, no-op Python handler, {what}")
    print(f"  events/s               {figures['events_per_s']:>8.0f}")
    print(f"  server CPU per event   {figures['server_us']:>8.1f} us")
    print(f"  workers CPU per event  {figures['workers_us']:>8.1f} us  (all environments)")
    print(f"  load average           {figures['load']:>8.2f}")
    if options.json is not None:
        options.json.write_text(json.dumps(figures))


if __name__ == "__main__":
    main()
