"""Round-trip cost of the process executor: a no-op handler, warm environments.

Runs ``--invocations`` calls through ``ProcessExecutor`` with ``--callers`` callers in
parallel (``--workers`` of them by default) on ``--workers`` environments, and prints
invocations per second, the CPU time this process spent per invocation, and the p50
and p99 latency of one call as the caller sees it, plus the cold-start time. With more
callers than environments, calls wait for one, and queue in them behind running calls.
``--runtime nodejs`` serves a no-op Node.js handler instead of a Python one.

    python -m bench.executor_bench [--invocations 20000] [--workers 2] [--callers N]
                                   [--runtime python|nodejs] [--uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from triggerfish.runtime.base import FunctionSpec, InvocationRequest
from triggerfish.runtime.executor import ProcessExecutor

NOOP = "def handler(event, context):\n    return None\n"
NODE_NOOP = "exports.handler = async () => null;\n"


async def measure(
    invocations: int, workers: int, callers: int, runtime: str = "python"
) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as scratch:
        code = Path(scratch) / "noop"
        code.mkdir()
        if runtime == "nodejs":
            (code / "index.js").write_text(NODE_NOOP)
            handler = "index.handler"
        else:
            (code / "main.py").write_text(NOOP)
            handler = "main.handler"
        spec = FunctionSpec(
            function="noop",
            version="1",
            code_dir=code,
            handler=handler,
            runtime=runtime,
            max_concurrency=workers,
        )
        executor = ProcessExecutor(work_dir=Path(scratch) / "work")
        await executor.start()
        try:
            started = time.perf_counter()
            cold = await asyncio.gather(
                *(
                    executor.invoke(spec, InvocationRequest(f"cold-{n}", b"{}"))
                    for n in range(workers)
                )
            )
            cold_ms = (time.perf_counter() - started) * 1000
            assert all(result.status == "ok" for result in cold), cold
            latencies: list[float] = []

            async def caller(index: int, count: int) -> None:
                clock = time.perf_counter
                for n in range(count):
                    request = InvocationRequest(f"{index}-{n}", b"{}")
                    begin = clock()
                    result = await executor.invoke(spec, request)
                    latencies.append(clock() - begin)
                    if result.status != "ok":
                        raise RuntimeError(result.error_document())

            share = invocations // callers
            started = time.perf_counter()
            cpu = time.process_time()
            await asyncio.gather(*(caller(index, share) for index in range(callers)))
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu
        finally:
            await executor.stop(grace=5.0)
    latencies.sort()
    return {
        "invocations": len(latencies),
        "per_second": len(latencies) / elapsed,
        "cpu_us": cpu / len(latencies) * 1e6,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "cold_start_ms": cold_ms,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invocations", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--callers", type=int, help="callers in parallel (--workers)")
    parser.add_argument("--runtime", choices=("python", "nodejs"), default="python")
    parser.add_argument("--uvloop", action="store_true", help="run the executor on uvloop")
    options = parser.parse_args()
    if options.uvloop:
        import uvloop

        runner = uvloop.run
    else:
        runner = asyncio.run
    callers = options.callers or options.workers
    figures = runner(measure(options.invocations, options.workers, callers, options.runtime))
    loop_name = "uvloop" if options.uvloop else "asyncio"
    print(
        f"executor round trip, no-op {options.runtime} handler, {options.workers} workers,"
        f" {callers} callers, {loop_name}"
    )
    print(f"  invocations      {figures['invocations']:>10.0f}")
    print(f"  invocations/s    {figures['per_second']:>10.0f}   (target >= 5000)")
    print(f"  cpu per call     {figures['cpu_us']:>10.1f} us (this process)")
    print(f"  p50 latency      {figures['p50_ms']:>10.3f} ms")
    print(f"  p99 latency      {figures['p99_ms']:>10.3f} ms")
    print(
        f"  cold start       {figures['cold_start_ms']:>10.1f} ms  ({options.workers} in parallel)"
    )


if __name__ == "__main__":
    main()
