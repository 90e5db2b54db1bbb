"""What recording an invocation costs the server's event loop, in CPU microseconds a record.

Run from the repository root: ``python -m bench.record_bench`` (``--quick`` for a short
run). Every invocation (synchronous, asynchronous, trigger delivery) makes ids and is
recorded on the event loop's thread, which is the busiest thread of a node, so each
figure is CPU time, not wall time:

- ``new_id``: one id, made in a loop (most share their millisecond with the one before);
- ``new_id, 10 a millisecond``: one id when they come 10 a millisecond, about the pace
  of a node serving 3,500 invocations a second (the first of each millisecond draws new
  random bits); on a shared machine that first call also meets cold caches;
- ``from_result``: an ``InvocationRecord`` built from an executor's result;
- ``observe``: ``Metrics.observe`` of one record;
- ``record``: ``Recorder.record`` (the record, the buffer, the metrics);
- ``record+flush``: ``record`` then the flush that writes it to a real SQLite store in a
  temporary directory, in batches of ``--batch`` records (700: 0.2 s of 3,500
  invocations a second), on the event loop's thread (``loop``) and on every thread of
  the process (``process``: the SQLite driver's thread as well).

The records mix four functions and the outcomes a busy node sees (mostly ok, a few
errors with a stack trace, throttles and cold starts).

``--baseline DIR`` also measures the source tree ``DIR`` (say, a worktree of an earlier
commit: its ``src`` is put first on ``PYTHONPATH``) and prints its figures next to this
tree's. Each round runs every tree once, in a fresh process, in turn, so that drift of a
shared machine falls on both alike; a figure is the median over the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FIGURES = (
    ("new_id", "new_id"),
    ("new_id_paced", "new_id, 10 a millisecond"),
    ("from_result", "InvocationRecord.from_result"),
    ("observe", "Metrics.observe"),
    ("record", "Recorder.record"),
    ("record_flush_loop", "record+flush, loop thread"),
    ("record_flush_process", "record+flush, process"),
)


def make_results(count: int) -> list[Any]:
    """Executor results like a busy node's: 4 functions; of every 100, 94 ok, 3 errors,
    2 throttled, 1 cold start."""
    from triggerfish.ids import new_id
    from triggerfish.runtime.base import InvocationResult

    results = []
    for n in range(count):
        request_id = new_id()
        kind = n % 100
        logs = (
            f"START RequestId: {request_id} Version: 0123456789ab\nhello\n"
            f"END RequestId: {request_id}\nREPORT RequestId: {request_id}\tDuration: 1.23 ms"
            "\tBilled Duration: 2 ms\tMemory Size: 128 MB\tMax Memory Used: 31 MB\n"
        )
        result = InvocationResult(
            request_id=request_id,
            status="ok",
            result=b'{"ok": true, "n": %d}' % n,
            logs=logs,
            started_at=1_700_000_000.0 + n / 1000,
            duration_ms=0.4 + (n % 37) / 10,
            billed_duration_ms=1 + (n % 37) // 10,
            memory_size_mb=128,
            max_memory_used_mb=31,
        )
        if kind < 3:
            result.status = "error"
            result.result = None
            result.error_type = "ValueError"
            result.error_message = "bad size"
            result.stack_trace = ['  File "/var/task/main.py", line 4, in handler\n']
        elif kind < 5:
            result.status = "throttled"
            result.result = None
            result.logs = ""
            result.duration_ms = 0.0
            result.billed_duration_ms = 0
        elif kind == 5:
            result.init_duration_ms = 85.5
        results.append(result)
    return results


def per_record(clock: Callable[[], float], count: int, work: Callable[[], object]) -> float:
    gc.collect()
    started = clock()
    work()
    return (clock() - started) / count * 1e6


def paced(make: Callable[[], object], per_ms: int, samples: int) -> float:
    """CPU time of ``make`` when it runs ``per_ms`` times a millisecond: the median over
    ``samples`` milliseconds of the calls made just after the clock turned, divided by
    ``per_ms``. The wait for the next millisecond spins, outside the measure."""
    clock = time.thread_time_ns
    spent = []
    for _ in range(samples):
        now = time.time_ns() // 1_000_000
        while time.time_ns() // 1_000_000 == now:
            pass
        started = clock()
        for _ in range(per_ms):
            make()
        spent.append(clock() - started)
    return statistics.median(spent) / per_ms / 1000


async def measure(count: int, batch: int, folder: Path) -> dict[str, float]:
    """This process's figures, with ``triggerfish`` imported from ``sys.path``."""
    from triggerfish.ids import new_id
    from triggerfish.observe.metrics import Metrics
    from triggerfish.observe.recorder import Recorder
    from triggerfish.runtime.base import FunctionSpec
    from triggerfish.store.records import InvocationRecord
    from triggerfish.store.sql import SqlStore

    specs = [
        FunctionSpec(function=name, version="0123456789ab", code_dir=folder, handler="main.h")
        for name in ("resize", "notify", "ship", "bill")
    ]
    figures: dict[str, float] = {}
    clock = time.thread_time

    def ids() -> None:
        for _ in range(count):
            new_id()

    figures["new_id"] = per_record(clock, count, ids)
    figures["new_id_paced"] = paced(new_id, 10, 300 if count < 20_000 else 1_000)

    results = make_results(count)
    records: list[InvocationRecord] = []

    def build() -> None:
        for n, result in enumerate(results):
            records.append(
                InvocationRecord.from_result(
                    result, function=specs[n % 4].function, version="0123456789ab"
                )
            )

    figures["from_result"] = per_record(clock, count, build)
    metrics = Metrics()
    for made in records[:200]:  # the label sets exist on a running node
        metrics.observe(made)

    def observe() -> None:
        for made in records:
            metrics.observe(made)

    figures["observe"] = per_record(clock, count, observe)

    async with SqlStore(f"sqlite+aiosqlite:///{folder / 'store.db'}") as store:
        recorder = Recorder(store, metrics=Metrics(), batch=batch)
        await run_batches(recorder, specs, make_results(1000), batch)  # warm up

        def record() -> None:
            for n, result in enumerate(results):
                recorder.record(
                    specs[n % 4], result, trigger=None, event_ids=(), attempt=1, request_bytes=64
                )

        figures["record"] = per_record(clock, count, record)
        await recorder.flush()

        fresh = make_results(count)
        gc.collect()
        loop_started, process_started = time.thread_time(), time.process_time()
        await run_batches(recorder, specs, fresh, batch)
        figures["record_flush_loop"] = (time.thread_time() - loop_started) / count * 1e6
        figures["record_flush_process"] = (time.process_time() - process_started) / count * 1e6
    return figures


async def run_batches(recorder: Any, specs: list[Any], results: list[Any], batch: int) -> None:
    for start in range(0, len(results), batch):
        for n in range(start, min(start + batch, len(results))):
            recorder.record(
                specs[n % 4],
                results[n],
                trigger="resize.orders" if n % 2 else None,
                event_ids=(results[n].request_id,) if n % 2 else (),
                attempt=1,
                request_bytes=64,
            )
        await recorder.flush()


def run_tree(source: Path, count: int, batch: int) -> tuple[str, dict[str, float]]:
    """The package a new process imports with the tree ``source``'s ``src`` first on its
    path, and its figures."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(source / "src"), str(ROOT)])}
    code = f"from bench.record_bench import child; child({count}, {batch})"
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"the run of {source} failed:\n{done.stderr}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return str(report["package"]), dict(report["figures"])


def child(count: int, batch: int) -> None:
    import triggerfish

    with tempfile.TemporaryDirectory(prefix="tf-record-bench-") as tmp:
        figures = asyncio.run(measure(count, batch, Path(tmp)))
    package = str(Path(triggerfish.__file__).parent)
    print(json.dumps({"package": package, "figures": figures}))


def render(runs: dict[str, list[dict[str, float]]], count: int, rounds: int) -> str:
    names = list(runs)
    lines = [f"CPU µs per record, median of {rounds} round(s) of {count:,} records"]
    header = f"{'figure':<30}" + "".join(f"{name:>12}" for name in names)
    if len(names) == 2:
        header += f"{'this/base':>12}"
    lines += [header, "-" * len(header)]
    for key, label in FIGURES:
        medians = [statistics.median(run[key] for run in runs[name]) for name in names]
        line = f"{label:<30}" + "".join(f"{value:>12.2f}" for value in medians)
        if len(medians) == 2 and medians[1]:
            line += f"{medians[0] / medians[1]:>12.2f}"
        lines.append(line)
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.record_bench", description=__doc__)
    parser.add_argument("--records", type=int, default=20_000, help="records a round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (each tree once each)")
    parser.add_argument("--batch", type=int, default=700, help="records a flush")
    parser.add_argument("--quick", action="store_true", help="5,000 records, 1 round")
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="DIR",
        help="also measure the source tree DIR (its src/ first on PYTHONPATH), interleaved",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    count = 5_000 if args.quick else args.records
    rounds = 1 if args.quick else args.rounds
    trees = {"this": ROOT}
    if args.baseline is not None:
        trees["base"] = args.baseline.resolve()
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    packages: dict[str, str] = {}
    for number in range(rounds):
        for name, source in trees.items():
            packages[name], figures = run_tree(source, count, args.batch)
            runs[name].append(figures)
        print(f"round {number + 1}/{rounds} done", file=sys.stderr)
    for name, package in packages.items():
        print(f"{name}: {package}")
    print(render(runs, count, rounds))


if __name__ == "__main__":
    main()
