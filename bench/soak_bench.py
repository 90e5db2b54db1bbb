"""The soak benchmark: does a node that runs for a long time stay the same size?

Starts ``triggerfish up`` in a scratch data directory, deploys ``bench/functions-soak``
(one handler: most events succeed, ``--fail`` of them fail and are dead-lettered after
a retry, ``--slow`` of them take 200 ms), publishes at a steady ``--rate`` for
``--minutes``, and every ``--every`` seconds samples the server process's resident
memory with who holds it (``bench/memwatch.py``: CPython's arenas and the bytes used in
them, the C allocator's bytes in use and kept free, SQLite's own), the workers' resident
memory (the server's descendants), its open files, and the size of the
store and bus databases with their WAL files, and the rows of the bus's tables that grow
(events, dedupe keys, pending deliveries), read on a read-only connection of its own.
The table shows the samples over time;
the verdict says whether each figure is flat over the last third of the run (its
fitted slope moves it by less than ``--tolerance`` of its mean over that third), which
a node should reach once its retention (``--records-retention``, topics' 60 s, the
publish dedupe window ``--dedupe-window``) has started to remove as much as arrives.

    python -m bench.soak_bench [--minutes 10] [--rate 200] [--records-retention 120]
                               [--dedupe-window 120] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from bench import memwatch
from bench.invoke_bench import process_tree
from bench.triggerfish_core import free_port

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = Path(__file__).resolve().parent / "functions-soak"
FIGURES = ("server_rss_mb", "py_arenas_mb", "py_used_mb", "malloc_used_mb", "malloc_free_mb",
           "sqlite_mb", "workers_rss_mb", "open_files", "store_mb", "store_wal_mb", "bus_mb",
           "bus_wal_mb", "bus_events", "bus_dedupe", "bus_pending")  # fmt: skip


@dataclass(slots=True)
class Sample:
    seconds: float
    published: int
    server_rss_mb: float
    py_arenas_mb: float
    py_used_mb: float
    malloc_used_mb: float
    malloc_free_mb: float
    sqlite_mb: float
    workers_rss_mb: float
    open_files: int
    store_mb: float
    store_wal_mb: float
    bus_mb: float
    bus_wal_mb: float
    bus_events: int
    bus_dedupe: int
    bus_pending: int


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def file_mb(path: Path) -> float:
    try:
        return path.stat().st_size / 1024 / 1024
    except FileNotFoundError:
        return 0.0


def bus_rows(path: Path) -> tuple[int, int, int]:
    """Rows of the bus's ``events``, ``dedupe`` and ``pending`` tables (0s when unreadable)."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return 0, 0, 0
    try:
        counts = [conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                  for t in ("events", "dedupe", "pending")]  # fmt: skip
        return counts[0], counts[1], counts[2]
    except sqlite3.Error:
        return 0, 0, 0
    finally:
        conn.close()


def sample(pid: int, data: Path, started: float, published: int, memory: Path) -> Sample:
    try:
        open_files = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        open_files = 0
    events, dedupe, pending = bus_rows(data / "bus.db")
    held = memwatch.read(memory)
    return Sample(
        seconds=round(time.monotonic() - started, 1),
        published=published,
        server_rss_mb=round(rss_mb(pid), 1),
        py_arenas_mb=held.get("py_arenas", -1),
        py_used_mb=held.get("py_used", -1),
        malloc_used_mb=held.get("malloc_used", -1),
        malloc_free_mb=held.get("malloc_free", -1),
        sqlite_mb=held.get("sqlite", -1),
        workers_rss_mb=round(sum(rss_mb(child) for child in process_tree([pid])[1:]), 1),
        open_files=open_files,
        store_mb=round(file_mb(data / "store.db"), 2),
        store_wal_mb=round(file_mb(data / "store.db-wal"), 2),
        bus_mb=round(file_mb(data / "bus.db"), 2),
        bus_wal_mb=round(file_mb(data / "bus.db-wal"), 2),
        bus_events=events,
        bus_dedupe=dedupe,
        bus_pending=pending,
    )


def slope(points: list[tuple[float, float]]) -> float:
    """The least-squares slope of ``points`` (per second)."""
    n = len(points)
    if n < 2:
        return 0.0
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    var = sum((x - mean_x) ** 2 for x, _ in points)
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / var if var else 0.0


def verdicts(
    samples: list[Sample], tolerance: float, pass_rows: float = 0.0
) -> dict[str, dict[str, Any]]:
    """Per figure: its slope per minute over the last third and whether it is flat.

    ``pass_rows`` is what arrives between two housekeeping passes (rate times interval):
    the bus's events and dedupe keys rise by that much and fall back at every pass, so
    a line fitted through a few samples of that sawtooth moves by up to as much."""
    last = samples[len(samples) - max(2, len(samples) // 3) :]
    span = last[-1].seconds - last[0].seconds if len(last) > 1 else 0.0
    out = {}
    for name in FIGURES:
        points = [(s.seconds, float(getattr(s, name))) for s in last]
        per_s = slope(points)
        mean = sum(y for _, y in points) / len(points)
        moved = abs(per_s * span)
        # A figure near zero (an empty WAL) is flat when it moves by less than 1 MB.
        # Rows in flight come and go by the dozen from one sample to the next.
        floor = 1.0 if name.endswith("_mb") else 2.0 if name == "open_files" else 100.0
        if name in ("bus_events", "bus_dedupe"):
            floor = max(floor, pass_rows)
        flat = moved <= max(tolerance * mean, floor)
        out[name] = {"slope_per_min": round(per_s * 60, 3), "mean": round(mean, 2), "flat": flat}
    return out


class Publisher(threading.Thread):
    """Publishes ``rate`` events a second in batches of a tenth of a second."""

    def __init__(self, url: str, token: str, *, rate: int, fail: float, slow: float) -> None:
        super().__init__(daemon=True)
        self.url, self.token, self.rate = url, token, rate
        self.fail, self.slow = fail, slow
        self.published = 0
        self.errors = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Content-Type": "application/cloudevents-batch+json",
        }
        step = 0.1
        per_step = max(1, round(self.rate * step))
        due = time.monotonic()
        with httpx.Client(base_url=self.url, headers=headers, timeout=30) as http:
            while not self.stopping.is_set():
                batch = [self.event() for _ in range(per_step)]
                try:
                    response = http.post("/v1/topics/soak/events", content=json.dumps(batch))
                    if response.is_success:
                        self.published += len(batch)
                    else:
                        self.errors += 1
                except httpx.HTTPError:
                    self.errors += 1
                due += step
                time.sleep(max(0.0, due - time.monotonic()))

    def event(self) -> dict[str, Any]:
        roll = random.random()
        kind = "fail" if roll < self.fail else "slow" if roll < self.fail + self.slow else "ok"
        number = self.published
        return {
            "specversion": "1.0",
            "id": f"soak-{time.time_ns()}-{number}-{random.getrandbits(32)}",
            "source": "/bench/soak",
            "type": "bench.soak",
            "data": {"kind": kind, "pad": "x" * 200},
        }


def run(args: argparse.Namespace) -> dict[str, Any]:
    scratch = Path(tempfile.mkdtemp(prefix="tf-soak-"))
    data = scratch / "data"
    memory = scratch / "memory.json"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "TRIGGERFISH_RECORDS_RETENTION": str(args.records_retention),
        "TRIGGERFISH_HOUSEKEEPING_INTERVAL": str(args.housekeeping),
        "TRIGGERFISH_DEDUPE_WINDOW": str(args.dedupe_window),
        "TRIGGERFISH_MEMWATCH": str(memory),
        "TRIGGERFISH_MEMWATCH_EVERY": str(min(args.every, 5.0)),
    }
    env.pop("TRIGGERFISH_URL", None)
    env.pop("TRIGGERFISH_TOKEN", None)
    log = (scratch / "server.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.memwatch",
            "up",
            "--port",
            str(port),
            "--data-dir",
            str(data),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).json().get("status") == "ok":
                    break
            except (httpx.HTTPError, ValueError):
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the node did not start; see {scratch / 'server.log'}")
            time.sleep(0.1)
        token = (data / "admin.token").read_text().split()[0]
        subprocess.run(
            [sys.executable, "-m", "triggerfish", "deploy", str(FUNCTIONS)],
            env={**env, "TRIGGERFISH_URL": url, "TRIGGERFISH_TOKEN": token},
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        publisher = Publisher(url, token, rate=args.rate, fail=args.fail, slow=args.slow)
        started = time.monotonic()
        publisher.start()
        samples: list[Sample] = []
        end = started + args.minutes * 60
        while time.monotonic() < end:
            samples.append(sample(server.pid, data, started, publisher.published, memory))
            if not args.json:
                print_row(samples[-1], header=len(samples) == 1)
            time.sleep(min(args.every, max(0.0, end - time.monotonic())))
        samples.append(sample(server.pid, data, started, publisher.published, memory))
        publisher.stopping.set()
        publisher.join(10)
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    return {
        "minutes": args.minutes,
        "rate": args.rate,
        "records_retention": args.records_retention,
        "dedupe_window": args.dedupe_window,
        "published": publisher.published,
        "publish_errors": publisher.errors,
        "samples": [asdict(s) for s in samples],
        "last_third": verdicts(samples, args.tolerance, args.rate * args.housekeeping),
    }


def print_row(s: Sample, *, header: bool) -> None:
    if header:
        print(f"{'s':>7} {'published':>10} " + " ".join(f"{n:>13}" for n in FIGURES))
    values = " ".join(f"{getattr(s, n):>13}" for n in FIGURES)
    print(f"{s.seconds:>7} {s.published:>10} {values}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=200, help="events per second")
    parser.add_argument("--fail", type=float, default=0.05, help="share of failing events")
    parser.add_argument("--slow", type=float, default=0.05, help="share of 200 ms events")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between samples")
    parser.add_argument(
        "--records-retention", default="120", help="the node's records_retention (seconds)"
    )
    parser.add_argument(
        "--dedupe-window", default="120", help="the node's publish dedupe window (seconds)"
    )
    parser.add_argument("--housekeeping", type=float, default=10.0, help="seconds between passes")
    parser.add_argument("--tolerance", type=float, default=0.05, help="flat: moves less than this")
    parser.add_argument("--keep", action="store_true", help="keep the scratch data directory")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args()
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"\npublished {result['published']} events ({result['publish_errors']} failed posts)")
    print(f"{'figure':>16} {'mean':>10} {'slope/min':>10}  flat over the last third")
    for name, verdict in result["last_third"].items():
        flat = "yes" if verdict["flat"] else "NO"
        print(f"{name:>16} {verdict['mean']:>10} {verdict['slope_per_min']:>10}  {flat}")


if __name__ == "__main__":
    main()
