"""The first call of a function deployed a moment ago, as a user feels it, beside the
same handler run by a freshly spawned ``python``.

Starts ``triggerfish up`` (with its sandbox where the machine allows one: run as root
for the full one) and, for every sample, deploys a new function through the HTTP API
(``PUT /v1/functions/NAME``, its code a zip of one ``handler.py``), then times one
synchronous call (``POST /v1/functions/NAME/invoke``, ``{}``) from the client: the
round trip through the HTTP API: right after the deploy answered, and again (new
functions) a moment after it (``--pause``), when the environment a deploy starts ahead
(``warm_on_deploy``) has had time to come up. Beside it, for the same
handler: ``python -c 'from handler import handler; handler({}, None)'`` in a new
process, the interpreter the node's Python environments run, timed from the spawn to
its exit, which is what running the handler without Triggerfish costs. Two handlers: a
tiny one, and one importing pydantic and httpx. The ratio is of the medians.

    python -m bench.first_call_bench [--samples 30] [--json]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.coldstart_bench import HEAVY, TINY
from bench.triggerfish_core import TriggerfishServer, expect, find_executable


def code_zip(body: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", body)
    return buffer.getvalue()


def first_call(client: httpx.Client, name: str, body: str, pause: float) -> float:
    """Deploy ``name`` with ``body`` as its handler, wait ``pause`` seconds, then time
    its first call (ms)."""
    expect(
        client.put(
            f"/v1/functions/{name}",
            data={"config": orjson.dumps({"handler": "handler.handler"}).decode()},
            files={"code": ("code.zip", code_zip(body), "application/zip")},
        ),
        200,
    )
    time.sleep(pause)
    began = time.perf_counter()
    expect(client.post(f"/v1/functions/{name}/invoke", json={}), 200)
    return (time.perf_counter() - began) * 1000


def fresh_python(python: Path, folder: Path) -> float:
    """Spawn ``python``, run the handler of ``folder`` once, wait for its exit (ms)."""
    began = time.perf_counter()
    subprocess.run(
        [str(python), "-c", "from handler import handler; handler({}, None)"],
        cwd=folder, check=True,
    )  # fmt: skip
    return (time.perf_counter() - began) * 1000


def figures(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50_ms": statistics.median(ordered),
        "p90_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))],
    }


def run(samples: int, pause: float) -> dict[str, Any]:
    executable = find_executable()
    python = executable.with_name("python")
    server = TriggerfishServer(executable)
    server.start()
    rows: dict[str, Any] = {}
    with (
        server,
        httpx.Client(base_url=server.url, headers=server.headers, timeout=60) as client,
        tempfile.TemporaryDirectory(prefix="tf-first-call-") as scratch,
    ):
        said = [ln for ln in server.log_tail(80).splitlines() if ln.startswith("sandbox:")]
        sandbox = said[-1].removeprefix("sandbox:").strip() if said else ""
        for kind, body in (("tiny", TINY), ("pydantic + httpx", HEAVY)):
            folder = Path(scratch) / ("tiny" if body is TINY else "heavy")
            folder.mkdir()
            (folder / "handler.py").write_text(body)
            fresh_python(python, folder)  # the files in the page cache, as for the node
            for when, wait in (("right after its deploy", 0.0), (f"{pause:g} s after", pause)):
                calls, spawns = [], []
                for i in range(samples):  # alternating, so both see the same machine
                    name = f"first-{folder.name}-{int(wait * 1000)}-{i}"
                    calls.append(first_call(client, name, body, wait))
                    spawns.append(fresh_python(python, folder))
                call, spawn = figures(calls), figures(spawns)
                rows[f"{kind}, {when}"] = {
                    "first_call": call,
                    "fresh_python": spawn,
                    "ratio_p50": call["p50_ms"] / spawn["p50_ms"],
                }
    return {"sandbox": sandbox, "samples": samples, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument(
        "--pause", type=float, default=1.0, help="seconds between deploy and call, second row"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    result = run(args.samples, args.pause)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"sandbox: {result['sandbox'] or 'unknown'}; {args.samples} samples per row")
    print("| handler | first call p50 / p90 ms | fresh python p50 / p90 ms | ratio of p50s |")
    print("| --- | ---: | ---: | ---: |")
    for kind, row in result["rows"].items():
        call, spawn = row["first_call"], row["fresh_python"]
        print(
            f"| {kind} | {call['p50_ms']:.2f} / {call['p90_ms']:.2f} | "
            f"{spawn['p50_ms']:.2f} / {spawn['p90_ms']:.2f} | {row['ratio_p50']:.2f}x |"
        )


if __name__ == "__main__":
    main()
