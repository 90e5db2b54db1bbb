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

``--stages`` also prints where an event's time goes on that path: the median time from
the publish call to each step (the publish's transaction leasing the event for the
trigger's waiting fetch, that transaction committed, the trigger's runner holding the
event, the executor asked to invoke, the invocation written to the environment, the
handler's start), each taken from a wrapper around the function that does the step.

    python -m bench.latency_probe [--events 2000] [--rate 200] [--no-records] [--stages]
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
from triggerfish.bus._sqlite_thread import SqliteThread
from triggerfish.bus.sqlite import SqliteBus
from triggerfish.config import Settings
from triggerfish.dispatch.runner import TriggerRunner
from triggerfish.events.structured import event_from_dict
from triggerfish.node import Node
from triggerfish.runtime.executor import ProcessExecutor
from triggerfish.runtime.worker import Worker

HANDLED_WITHIN = 60.0  # seconds

#: The steps ``--stages`` times, in the order an event takes them: (label, class, method,
#: whether the step is the method's return rather than its call).
STAGES: list[tuple[str, type, str, bool]] = [
    ("leased in the publish's transaction", SqliteBus, "_serve", False),
    ("committed, handed back", SqliteThread, "_hand_back", False),
    ("runner holds the event", TriggerRunner, "_dispatch", False),
    ("executor asked to invoke", ProcessExecutor, "invoke", False),
    ("written to the environment", Worker, "send", True),
]


class Stages:
    """Wraps the functions of ``STAGES`` to note when each ran, and sorts the notes out
    per event: the first time of each step after the event's publish, in order."""

    def __init__(self) -> None:
        self.notes: list[tuple[str, float]] = []
        self.per_event: dict[str, list[float]] = {}
        self._undo: list[tuple[type, str, Any]] = []

    def install(self) -> None:
        for label, owner, name, at_return in STAGES:
            original = getattr(owner, name)
            self._undo.append((owner, name, original))
            setattr(owner, name, self._wrapped(label, original, at_return))

    def uninstall(self) -> None:
        for owner, name, original in reversed(self._undo):
            setattr(owner, name, original)
        self._undo.clear()

    def _wrapped(self, label: str, original: Any, at_return: bool) -> Any:
        notes = self.notes
        clock = time.perf_counter
        if asyncio.iscoroutinefunction(original):

            async def noted_async(*args: Any, **kwargs: Any) -> Any:
                notes.append((label, clock()))
                return await original(*args, **kwargs)

            return noted_async

        def noted(*args: Any, **kwargs: Any) -> Any:
            if not at_return:
                notes.append((label, clock()))
            result = original(*args, **kwargs)
            if at_return:
                notes.append((label, clock()))
            return result

        return noted

    def event_sent(self, event_id: str) -> float:
        """Call just before publishing ``event_id``: its timeline starts here."""
        self.notes.append((f"publish {event_id}", time.perf_counter()))
        return self.notes[-1][1]

    def sort_out(self, started: dict[str, float], sent_wall: dict[str, float]) -> None:
        """Per event, the steps' times after its publish (ms), with the handler's start
        (the environment's wall clock, set against the publish's) last."""
        current: str | None = None
        began = 0.0
        steps: dict[str, dict[str, float]] = {}
        for label, at in self.notes:
            if label.startswith("publish "):
                current, began = label[len("publish ") :], at
                steps[current] = {}
            elif current is not None and label not in steps[current]:
                steps[current][label] = (at - began) * 1000
        for event_id, times in steps.items():
            if event_id not in started or len(times) < len(STAGES):
                continue
            labels = [label for label, *_ in STAGES]
            ordered = [times[label] for label in labels]
            if ordered != sorted(ordered):
                continue  # a step of another event came in between
            handler = (started[event_id] - sent_wall[event_id]) * 1000
            for label, value in zip([*labels, "handler starts"], [*ordered, handler], strict=True):
                self.per_event.setdefault(label, []).append(value)


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


async def probe(
    events: int, rate: float, records: bool, stages: Stages | None = None
) -> dict[str, float]:
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
            if stages is not None:
                stages.install()
            cpu = os.times()
            begin = loop.time()
            for i in range(events):
                delay = begin + i / rate - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                event = event_from_dict(make_event("probe", i))
                if stages is not None:
                    stages.event_sent(event.id)
                sent[event.id] = time.time()
                await node.bus.publish("bench", [event])
            await until_handled(started, list(sent))
            after = os.times()
            if stages is not None:
                stages.uninstall()
                stages.sort_out(started, sent)
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
    parser.add_argument(
        "--stages", action="store_true", help="print where an event's time goes on the path"
    )
    options = parser.parse_args()
    import uvloop

    stages = Stages() if options.stages else None
    figures = uvloop.run(probe(options.events, options.rate, not options.no_records, stages))
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
    if stages is not None:
        timed = stages.per_event
        count = len(next(iter(timed.values()), []))
        print(f"  after the publish call, median ms ({count} events without overlap):")
        before = 0.0
        for label, values in timed.items():
            at = percentile(values, 50)
            print(f"    {label:<38} {at:6.3f}  (+{at - before:.3f})")
            before = at
    if options.json is not None:
        options.json.write_text(json.dumps(figures))


if __name__ == "__main__":
    main()
