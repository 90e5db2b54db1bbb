"""Where an event's CPU goes, stage by stage, from a sampling profile of a real node.

Starts ``triggerfish up`` (SQLite bus and store), deploys ``bench/functions``, and runs
three phases under py-spy (``record --subprocesses --nonblocking``, so the node is not
paused to be sampled), each with a profile of its own:

- ``ingest``: ``--events`` events published over HTTP in batches of 500 to ``bench-tp``
  (no trigger yet: the publish alone);
- ``drain``: ``bench/functions-tp`` deployed and its trigger's backlog handled;
- ``sync``: ``POST /v1/functions/noop/invoke`` from ``wrk`` (32 connections) for
  ``--sync-seconds``.

Every sample of a busy thread of the server is given to a stage by the innermost frame
of Triggerfish in its stack (``STAGES``): the HTTP front and the event API (ingest), the
bus's publish, lease and ack with its writer's commits, the dispatcher, the server's
side of the round trip to an environment, the invocation record with its metrics;
samples with no Triggerfish frame go to the HTTP server (uvicorn), the event loop, or
other. The profile gives each stage's share; the server's CPU time over the phase,
read from ``/proc``, gives the total, so a stage's cost per event (or call) is its share
of that CPU time divided by the phase's events. (py-spy counts a thread blocked in a
call it does not know as waiting as busy, so its sample counts alone overstate.) The
environments' row is their CPU time from ``/proc``: they wait for their next call in
``poll``, which py-spy would count as busy too.

    python -m bench.stages_bench [--events 20000] [--sync-seconds 8] [--rate 250] [--json]

Needs ``py-spy`` (``pip install py-spy``) with the right to trace the server (root, or
``ptrace_scope`` 0), and ``wrk`` for the synchronous phase (skipped without it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.invoke_bench import process_cpu, tree_cpu
from bench.triggerfish_core import (
    BATCH,
    FUNCTIONS,
    FUNCTIONS_TP,
    TriggerfishServer,
    expect,
    find_executable,
    make_event,
    wait_drained,
    wrk_invoke,
)
from bench.workload import make_payload

#: (stage, path fragment of the innermost Triggerfish frame, qualified-name fragment or
#: "" for any): the first rule that matches names the stage.
STAGES: tuple[tuple[str, str, str], ...] = (
    ("bus: publish", "triggerfish/bus/", ".publish"),
    ("bus: publish", "triggerfish/bus/_sqlite_dedupe", ""),
    ("bus: lease", "triggerfish/bus/", ".fetch"),
    ("bus: lease", "triggerfish/bus/", "._serve"),
    ("bus: lease", "triggerfish/bus/", "._unpark"),
    ("bus: lease", "triggerfish/bus/_sqlite_leases", ""),
    ("bus: ack", "triggerfish/bus/", ".ack"),
    ("bus: ack", "triggerfish/bus/", ".nack"),
    ("bus: ack", "triggerfish/bus/", ".extend"),
    ("bus: writer and commits", "triggerfish/bus/", ""),
    ("record (store, metrics, costs)", "triggerfish/observe/", ""),
    ("record (store, metrics, costs)", "triggerfish/store/", ""),
    ("record (store, metrics, costs)", "triggerfish/dispatch/chains", ""),
    ("round trip (server side)", "triggerfish/runtime/", ""),
    ("dispatch", "triggerfish/dispatch/", ""),
    ("dispatch", "triggerfish/control/", ""),
    ("dispatch", "triggerfish/functions/", ""),
    ("ingest and invoke API", "triggerfish/api/", ""),
    ("ingest and invoke API", "triggerfish/events/", ""),
    ("ingest and invoke API", "triggerfish/auth", ""),
    ("other Triggerfish", "triggerfish/", ""),
)
HTTP = "HTTP server (uvicorn, httptools)"
LOOP = "event loop"
OTHER = "other"
ENVIRONMENTS = "environments (function processes)"
ORDER = (
    "ingest and invoke API", HTTP, "bus: publish", "bus: lease", "bus: ack",
    "bus: writer and commits", "dispatch", "round trip (server side)",
    "record (store, metrics, costs)", "other Triggerfish", LOOP, OTHER, ENVIRONMENTS,
)  # fmt: skip


def frames_of(line: str) -> tuple[int, list[str], int] | None:
    """The process id, the frames (outermost first) and the sample count of one line
    of py-spy's raw (collapsed) output. With ``--subprocesses`` a line names the chain
    of processes down to the sampled one; with ``--threads``, the thread."""
    stack, _, count = line.rstrip("\n").rpartition(" ")
    if not count.isdigit() or not stack:
        return None
    pid, frames = 0, []
    for part in stack.split(";"):
        if part.startswith("process "):
            pid = int(part[len("process ") :].partition(":")[0])
        elif not part.startswith("thread ("):
            frames.append(part)
    return pid, frames, int(count)


def stage_of(frames: list[str]) -> str:
    """The stage of one server stack (frames outermost first)."""
    for frame in reversed(frames):
        name, _, where = frame.partition(" (")
        if "triggerfish/" not in where or "triggerfish/cli/" in where:
            continue
        for stage, path, qualified in STAGES:
            if path in where and qualified in name:
                return stage
    text = ";".join(frames)
    if "uvicorn/" in text or "httptools" in text or "h11" in text:
        return HTTP
    if "asyncio/" in text or "uvloop" in text:
        return LOOP
    return OTHER


def stages(profile: Path, server: int) -> Counter[str]:
    """Samples per stage in one py-spy raw profile of ``server`` and its children."""
    counts: Counter[str] = Counter()
    for line in profile.read_text(errors="replace").splitlines():
        parsed = frames_of(line)
        if parsed is None:
            continue
        pid, frames, samples = parsed
        counts[stage_of(frames) if pid == server else ENVIRONMENTS] += samples
    return counts


class Profiler:
    """``py-spy record`` of a process tree for the length of a ``with`` block."""

    def __init__(self, pid: int, rate: int, output: Path) -> None:
        self.pid, self.rate, self.output = pid, rate, output
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Profiler:
        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        self._proc = subprocess.Popen(
            [spy, "record", "--pid", str(self.pid), "--subprocesses", "--nonblocking",
             "--threads", "--rate", str(self.rate), "--format", "raw", "-o", str(self.output)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        time.sleep(1.0)  # py-spy attaches before the phase begins
        if self._proc.poll() is not None:
            error = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
            raise SystemExit(f"py-spy could not record the server: {error.strip()}")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._proc is not None
        self._proc.send_signal(signal.SIGINT)  # py-spy writes its profile on SIGINT
        try:
            self._proc.wait(30)
        except subprocess.TimeoutExpired:
            self._proc.kill()


def phase(
    name: str, server: TriggerfishServer, rate: int, scratch: Path, work: Any
) -> dict[str, Any]:
    output = scratch / f"{name}.txt"
    with Profiler(server.pid, rate, output):
        own, tree = process_cpu(server.pid), tree_cpu(server.pid)
        units = work()
        own, tree = process_cpu(server.pid) - own, tree_cpu(server.pid) - tree
    counts = stages(output, server.pid)
    sampled = sum(counts[stage] for stage in ORDER if stage != ENVIRONMENTS) or 1
    server_us = own / units * 1e6
    per = {
        stage: counts[stage] / sampled * server_us
        for stage in ORDER
        if stage != ENVIRONMENTS and counts[stage]
    }
    per[ENVIRONMENTS] = (tree - own) / units * 1e6
    return {
        "phase": name,
        "units": units,
        "us_per_unit": per,
        "server_us": server_us,
        "server_samples": sampled,
    }


def ingest(server: TriggerfishServer, client: httpx.Client, events: int, run: str) -> int:
    for start in range(0, events, BATCH):
        batch = [make_event(run, i) for i in range(start, min(events, start + BATCH))]
        expect(
            client.post(
                "/v1/topics/bench-tp/events",
                content=orjson.dumps(batch),
                headers={"Content-Type": "application/cloudevents-batch+json"},
            ),
            202,
        )
    return events


def drain(server: TriggerfishServer, client: httpx.Client, events: int) -> int:
    server.deploy(FUNCTIONS_TP)
    wait_drained(client, "noop-tp", 300)
    return events


def sync(server: TriggerfishServer, seconds: int, wrk: str) -> int:
    figures, output = wrk_invoke(wrk, server, 32, seconds)
    if figures is None:
        raise SystemExit(f"wrk gave no figures: {output}")
    return int(figures[0])


def table(results: list[dict[str, Any]]) -> str:
    names = [r["phase"] for r in results]
    head = "| stage | " + " | ".join(f"{n}, us" for n in names) + " |"
    rows = [head, "| --- |" + " ---: |" * len(names)]
    for stage in ORDER:
        if any(stage in r["us_per_unit"] for r in results):
            cells = [f"{r['us_per_unit'].get(stage, 0.0):.1f}" for r in results]
            rows.append(f"| {stage} | " + " | ".join(cells) + " |")
    rows.append("| **server process, by /proc** | " + " | ".join(
        f"**{r['server_us']:.1f}**" for r in results) + " |")  # fmt: skip
    rows.append(
        "| server samples | " + " | ".join(str(r["server_samples"]) for r in results) + " |"
    )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--sync-seconds", type=int, default=8)
    parser.add_argument("--rate", type=int, default=250, help="samples per second")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--keep", type=Path, help="write the raw profiles to this folder")
    args = parser.parse_args()
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="tf-stages-") as tmp:
        scratch = args.keep or Path(tmp)
        scratch.mkdir(parents=True, exist_ok=True)
        server = TriggerfishServer(find_executable())
        server.start()
        with (
            server,
            httpx.Client(base_url=server.url, headers=server.headers, timeout=60) as client,
        ):
            server.deploy(FUNCTIONS)
            run = uuid.uuid4().hex[:8]
            results.append(phase("ingest", server, args.rate, scratch,
                                 lambda: ingest(server, client, args.events, run)))  # fmt: skip
            results.append(phase("drain", server, args.rate, scratch,
                                 lambda: drain(server, client, args.events)))  # fmt: skip
            wrk = shutil.which("wrk")
            if wrk is not None:
                for _ in range(200):  # a warm environment before the phase
                    expect(client.post("/v1/functions/noop/invoke", json=make_payload(0)), 200)
                results.append(phase("sync", server, args.rate, scratch,
                                     lambda: sync(server, args.sync_seconds, wrk)))  # fmt: skip
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(table(results))
        print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
