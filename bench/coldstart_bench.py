"""Cold starts of the process executor: fresh interpreter, zygote fork, snapshot fork.

Each sample is one invocation that must start a new environment, timed from the call
reaching ``ProcessExecutor.invoke`` to the handler starting (the environment's own
clock, ``InvocationResult.started_at``), and to the caller getting the result. Every
environment is replaced after its invocation (``max_invocations: 1``), so every sample
is a cold start; "first call" deploys a new function for every sample (a freshly
deployed function: its code packed and unpacked by the node's artifact store, as a
deploy does, in a new code directory and version). Two handlers: a tiny one, and one
importing pydantic and httpx at module level.

Each row is measured again with the node's sandbox (a user of the function's own, a
cgroup per environment: ``triggerfish.runtime.sandbox``) right after it, where the
machine allows one; the heading says which level it reached.

    python -m bench.coldstart_bench [--samples 100] [--no-sandbox]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from triggerfish.functions.artifacts import ArtifactStore
from triggerfish.functions.package import code_digest, pack_directory
from triggerfish.runtime.base import FunctionSpec, InvocationRequest
from triggerfish.runtime.executor import ProcessExecutor
from triggerfish.runtime.sandbox import Sandbox

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
    root: Path,
    body: str,
    mode: str,
    samples: int,
    *,
    fresh_each: bool = False,
    sandbox: Sandbox | None = None,
) -> Figures:
    executor = ProcessExecutor(work_dir=root / "run", zygote=mode != "spawn", sandbox=sandbox)
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


def sandbox_in(root: Path) -> Sandbox:
    """A node's sandbox with its folder in ``root``, which other users may pass."""
    os.chmod(root, 0o711)
    sandbox = Sandbox(root / "data", "bench", root_dir=root / "sandbox")
    sandbox.start()
    return sandbox


async def run(samples: int, sandboxed: bool) -> tuple[list[tuple[str, str, Figures]], str]:
    """Each kind of start without the sandbox and, with ``sandboxed``, right after it
    with the sandbox: the same machine state for both."""
    rows: list[tuple[str, str, Figures]] = []
    level = "not measured"
    for label, body in (("tiny", TINY), ("pydantic+httpx", HEAVY)):
        for mode in ("spawn", "zygote", "snapshot", "zygote, first call"):
            for confined in (False, True) if sandboxed else (False,):
                with tempfile.TemporaryDirectory() as scratch:
                    sandbox = sandbox_in(Path(scratch)) if confined else None
                    if sandbox is not None:
                        level = str(sandbox.level)
                    figures = await measure(
                        Path(scratch),
                        body,
                        mode.partition(",")[0],
                        samples,
                        fresh_each=mode.endswith("first call"),
                        sandbox=sandbox,
                    )
                rows.append((label, f"{mode}{', sandboxed' if confined else ''}", figures))
    return rows, level


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--no-sandbox", action="store_true", help="skip the rows with the sandbox")
    options = parser.parse_args()
    rows, level = asyncio.run(run(options.samples, not options.no_sandbox))
    print(f"cold start, {options.samples} samples each; ms from invoke() to handler start")
    print(f"sandbox of the sandboxed rows: {level}")
    print(
        f"  {'handler':<16}{'environment':<34}{'start p50':>10}{'start p99':>10}"
        f"{'call p50':>10}{'init p50':>10}"
    )
    for label, mode, figures in rows:
        print(
            f"  {label:<16}{mode:<34}{figures.start_p50:>10.2f}{figures.start_p99:>10.2f}"
            f"{figures.total_p50:>10.2f}{figures.init_p50:>10.2f}"
        )
    print("  target: first call of a tiny function, zygote: start p50 <= 5 ms, p99 <= 10 ms;")
    print("  the sandbox adds at most 1 ms to a zygote start's p50")


if __name__ == "__main__":
    main()
