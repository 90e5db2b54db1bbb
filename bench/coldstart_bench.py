"""Cold starts of the process executor: fresh interpreter, zygote fork, snapshot fork.

Each sample is one invocation that must start a new environment, timed from the call
reaching ``ProcessExecutor.invoke`` to the handler starting (the environment's own
clock, ``InvocationResult.started_at``), and to the caller getting the result. Every
environment is replaced after its invocation (``max_invocations: 1``), so every sample
is a cold start; "first call" deploys a new function for every sample (a freshly
deployed function: its code packed and unpacked by the node's artifact store, as a
deploy does, in a new code directory and version). Two handlers: a tiny one, and one
importing pydantic and httpx at module level.

    python -m bench.coldstart_bench [--samples 100]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from triggerfish.functions.artifacts import ArtifactStore
from triggerfish.functions.package import code_digest, pack_directory
from triggerfish.runtime.base import FunctionSpec, InvocationRequest
from triggerfish.runtime.executor import ProcessExecutor

TINY = "def handler(event, context):\n    return None\n"
HEAVY = (
    "import httpx\nimport pydantic\n\n\n"
    "class Order(pydantic.BaseModel):\n    id: int\n\n\n"
    "def handler(event, context):\n    return Order(id=1).id\n"
)
#: Lets the previous environment's teardown finish so it does not overlap the sample.
SETTLE = 0.02


@dataclass
class Figures:
    start_p50: float
    start_p99: float
    total_p50: float
    init_p50: float


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(len(ordered) * share) - 1))]


async def measure(
    root: Path, body: str, mode: str, samples: int, *, fresh_each: bool = False
) -> Figures:
    executor = ProcessExecutor(work_dir=root / "run", zygote=mode != "spawn")
    await executor.start()
    starts: list[float] = []
    totals: list[float] = []
    inits: list[float] = []
    try:
        spec = _spec(root, body, mode, "base")
        if mode == "snapshot":  # the snapshot is taken once, by a first invocation
            await executor.invoke(spec, InvocationRequest("warm-up", b"{}"))
        for n in range(samples):
            if fresh_each:
                # A comment of its own makes every sample's package (and digest) new.
                spec = _deployed(root, _spec(root, f"{body}# f{n}\n", mode, f"f{n}"))
            await asyncio.sleep(SETTLE)
            begin_wall = time.time()
            begin = time.perf_counter()
            result = await executor.invoke(spec, InvocationRequest(f"r{n}", b"{}"))
            totals.append((time.perf_counter() - begin) * 1000)
            if result.status != "ok" or not result.cold_start:
                raise RuntimeError(f"{mode}: {result.status} {result.error_document()}")
            starts.append((result.started_at - begin_wall) * 1000)
            inits.append(result.init_duration_ms or 0.0)
    finally:
        await executor.stop(grace=5.0)
    return Figures(
        percentile(starts, 0.5),
        percentile(starts, 0.99),
        statistics.median(totals),
        statistics.median(inits),
    )


def _deployed(root: Path, spec: FunctionSpec) -> FunctionSpec:
    """``spec`` with its code where a deploy puts it: packed, then unpacked by the
    node's artifact store."""
    package = pack_directory(spec.code_dir)
    code = ArtifactStore(root / "artifacts").put(code_digest(package), package)
    return dataclasses.replace(spec, code_dir=code)


def _spec(root: Path, body: str, mode: str, name: str) -> FunctionSpec:
    code = root / "code" / name
    code.mkdir(parents=True, exist_ok=True)
    (code / "main.py").write_text(body)
    return FunctionSpec(
        function=name,
        version="1",
        code_dir=code,
        handler="main.handler",
        memory=256,
        max_invocations=1,
        snapstart=mode == "snapshot",
    )


async def run(samples: int) -> list[tuple[str, str, Figures]]:
    rows: list[tuple[str, str, Figures]] = []
    for label, body in (("tiny", TINY), ("pydantic+httpx", HEAVY)):
        for mode in ("spawn", "zygote", "snapshot"):
            with tempfile.TemporaryDirectory() as scratch:
                rows.append((label, mode, await measure(Path(scratch), body, mode, samples)))
        with tempfile.TemporaryDirectory() as scratch:
            figures = await measure(Path(scratch), body, "zygote", samples, fresh_each=True)
            rows.append((label, "zygote, first call", figures))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100)
    options = parser.parse_args()
    rows = asyncio.run(run(options.samples))
    print(f"cold start, {options.samples} samples each; ms from invoke() to handler start")
    print(
        f"  {'handler':<16}{'environment':<22}{'start p50':>10}{'start p99':>10}"
        f"{'call p50':>10}{'init p50':>10}"
    )
    for label, mode, figures in rows:
        print(
            f"  {label:<16}{mode:<22}{figures.start_p50:>10.2f}{figures.start_p99:>10.2f}"
            f"{figures.total_p50:>10.2f}{figures.init_p50:>10.2f}"
        )
    print("  target: first call of a tiny function, zygote: start p50 <= 5 ms, p99 <= 10 ms")


if __name__ == "__main__":
    main()
