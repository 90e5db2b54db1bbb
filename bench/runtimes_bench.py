"""Cold starts by runtime: Python, Node.js and ``provided`` (the Lambda Runtime API).

Each sample is one invocation that must start a new environment (``max_invocations: 1``
replaces every environment after its call), timed from ``ProcessExecutor.invoke`` to
the handler starting (the environment's clock, ``InvocationResult.started_at``) and to
the caller getting the result. The handlers do nothing. Rows:

- python: forked from the zygote (the default);
- nodejs, pre-started: a spare ``node`` process already running takes the environment;
- nodejs, fresh process: ``node`` is started for each environment (spares off);
- provided, Python stdlib bootstrap: a ``bootstrap`` script using ``http.client``;
- provided, sh + curl: a shell bootstrap in the shape of AWS's custom runtime tutorial;
- provided, awslambdaric: ``python3 -m awslambdaric`` from the function's own virtual
  environment (built with uv first; skipped when it cannot be built).

Between samples the bench waits ``SETTLE`` seconds, as traffic that scales from zero
would, so a spare has time to start; under a burst of cold starts the Node.js rows
tend to the fresh-process figure.

    python -m bench.runtimes_bench [--samples 50]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import stat
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from triggerfish.functions.build import Builder
from triggerfish.runtime.base import FunctionSpec, InvocationRequest
from triggerfish.runtime.executor import ProcessExecutor

SETTLE = 0.1

PYTHON = "def handler(event, context):\n    return None\n"
NODE = "exports.handler = async () => null;\n"
STDLIB_BOOTSTRAP = """#!/usr/bin/env python3
import http.client, os
api = os.environ["AWS_LAMBDA_RUNTIME_API"]
connection = http.client.HTTPConnection(api)
while True:
    connection.request("GET", "/2018-06-01/runtime/invocation/next")
    response = connection.getresponse()
    response.read()
    request_id = response.getheader("Lambda-Runtime-Aws-Request-Id")
    connection.request("POST", f"/2018-06-01/runtime/invocation/{request_id}/response", b"null")
    connection.getresponse().read()
"""
CURL_BOOTSTRAP = """#!/bin/sh
api="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime"
while true; do
  headers="$(mktemp)"
  curl -sS -o /dev/null -D "$headers" "$api/invocation/next"
  id="$(grep -i '^Lambda-Runtime-Aws-Request-Id:' "$headers" | cut -d: -f2 | tr -d '[:space:]')"
  rm -f "$headers"
  curl -sS -o /dev/null -X POST "$api/invocation/$id/response" -d 'null'
done
"""
RIC_BOOTSTRAP = "#!/bin/sh\nexec python3 -m awslambdaric main.handler\n"


@dataclass
class Figures:
    start_p50: float
    start_p99: float
    total_p50: float
    total_p99: float
    init_p50: float


@dataclass
class Case:
    label: str
    runtime: str
    handler: str
    files: dict[str, str]
    spares: bool = True
    requirements: str | None = None


CASES = [
    Case("python (zygote fork)", "python", "main.handler", {"main.py": PYTHON}),
    Case("nodejs, pre-started", "nodejs", "index.handler", {"index.js": NODE}),
    Case("nodejs, fresh process", "nodejs", "index.handler", {"index.js": NODE}, spares=False),
    Case(
        "provided, stdlib bootstrap",
        "provided",
        "main.handler",
        {"bootstrap": STDLIB_BOOTSTRAP},
    ),
    Case("provided, sh + curl", "provided", "main.handler", {"bootstrap": CURL_BOOTSTRAP}),
    Case(
        "provided, awslambdaric",
        "provided",
        "main.handler",
        {"bootstrap": RIC_BOOTSTRAP, "main.py": PYTHON},
        requirements="awslambdaric\n",
    ),
]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(len(ordered) * share) - 1))]


def write_code(root: Path, case: Case) -> Path:
    code = root / "code"
    code.mkdir(parents=True)
    for name, text in case.files.items():
        path = code / name
        path.write_text(text)
        if name == "bootstrap":
            path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    if case.requirements is not None:
        (code / "requirements.txt").write_text(case.requirements)
    return code


async def measure(root: Path, case: Case, samples: int) -> Figures | str:
    code = write_code(root, case)
    python = None
    if case.requirements is not None:
        try:
            built = await Builder(root / "envs").ensure(code, function="bench")
        except Exception as exc:  # the bench reports what it could not measure
            return f"skipped: {str(exc).splitlines()[0]}"
        python = built.python if built is not None else None
    executor = ProcessExecutor(work_dir=root / "run", node_spares=case.spares)
    await executor.start()
    spec = FunctionSpec(
        function="bench",
        version="1",
        code_dir=code,
        handler=case.handler,
        runtime=case.runtime,
        memory=256,
        max_invocations=1,
        python=python,
    )
    starts: list[float] = []
    totals: list[float] = []
    inits: list[float] = []
    try:
        await executor.provision(spec)  # as when the version goes live
        for n in range(samples):
            await asyncio.sleep(SETTLE)
            begin_wall = time.time()
            begin = time.perf_counter()
            result = await executor.invoke(spec, InvocationRequest(f"r{n}", b"{}"))
            totals.append((time.perf_counter() - begin) * 1000)
            if result.status != "ok" or not result.cold_start:
                return f"failed: {result.status} {result.error_document()}"
            starts.append((result.started_at - begin_wall) * 1000)
            inits.append(result.init_duration_ms or 0.0)
    finally:
        await executor.stop(grace=5.0)
    return Figures(
        percentile(starts, 0.5),
        percentile(starts, 0.99),
        percentile(totals, 0.5),
        percentile(totals, 0.99),
        statistics.median(inits),
    )


async def run(samples: int) -> list[tuple[str, Figures | str]]:
    rows: list[tuple[str, Figures | str]] = []
    for case in CASES:
        if case.runtime == "nodejs" and shutil.which("node") is None:
            rows.append((case.label, "skipped: Node.js is not installed"))
            continue
        if "curl" in case.label and shutil.which("curl") is None:
            rows.append((case.label, "skipped: curl is not installed"))
            continue
        with tempfile.TemporaryDirectory() as scratch:
            rows.append((case.label, await measure(Path(scratch), case, samples)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=50)
    options = parser.parse_args()
    rows = asyncio.run(run(options.samples))
    print(
        f"cold start by runtime, {options.samples} samples each, no-op handler;"
        " ms from invoke() to handler start, and to the result"
    )
    print(
        f"  {'runtime':<30}{'start p50':>10}{'start p99':>10}"
        f"{'call p50':>10}{'call p99':>10}{'init p50':>10}"
    )
    for label, figures in rows:
        if isinstance(figures, str):
            print(f"  {label:<30}{figures}")
            continue
        print(
            f"  {label:<30}{figures.start_p50:>10.2f}{figures.start_p99:>10.2f}"
            f"{figures.total_p50:>10.2f}{figures.total_p99:>10.2f}{figures.init_p50:>10.2f}"
        )


if __name__ == "__main__":
    main()
