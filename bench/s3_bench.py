"""``python -m bench.s3_bench``: Triggerfish's S3-compatible API beside moto's server mode.

Both servers run on this machine in the same run, and are driven by the same boto3
workload: PutObject then GetObject of 4 KB and 8 MB objects from 16 concurrent clients
(requests/s and MB/s). Then, for Triggerfish only, the latency from the start of an
upload to the start of the handler of a bucket trigger (p50 and p99).

moto keeps objects in memory and does not fsync; Triggerfish writes every object to
disk durably and publishes its notification before answering.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from rich.console import Console
from rich.table import Table

from bench.invoke_bench import wait_healthy
from bench.triggerfish_core import free_port

KB = 1024
MB = 1024 * KB
CLIENTS = 16

HANDLER = """
import os, time
from urllib.parse import unquote_plus

def handler(event, context):
    started = time.time()
    with open(os.environ["OUT"], "a") as out:
        for record in event["Records"]:
            out.write(f"{unquote_plus(record['s3']['object']['key'])} {started}\\n")
"""


class Servers:
    """Triggerfish (with a bucket-triggered function) and moto, on free ports."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.procs: list[subprocess.Popen[bytes]] = []
        self.tf_url = ""
        self.moto_url = ""
        self.handler_out = work / "handler.txt"

    def start(self) -> None:
        project = self.work / "project"
        (project / "probe").mkdir(parents=True)
        (project / "probe" / "main.py").write_text(textwrap.dedent(HANDLER))
        manifest = {
            "functions": {
                "probe": {
                    "handler": "main.handler",
                    "code": "./probe",
                    "environment": {"OUT": str(self.handler_out)},
                    "triggers": [{"bucket": {"name": "latency", "prefix": "probe/"}}],
                }
            }
        }
        (project / "triggerfish.yaml").write_text(json.dumps(manifest))
        port = free_port()
        self.tf_url = f"http://127.0.0.1:{port}"
        data = self.work / "data"
        log = (self.work / "triggerfish.log").open("wb")
        self.procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "triggerfish",
                    "up",
                    "--port",
                    str(port),
                    "--data-dir",
                    str(data),
                    "--log-level",
                    "warning",
                    "--deploy",
                    str(project / "triggerfish.yaml"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        wait_healthy(f"{self.tf_url}/healthz", self.procs[-1], "triggerfish up")
        moto_port = free_port()
        self.moto_url = f"http://127.0.0.1:{moto_port}"
        moto = shutil.which("moto_server") or str(Path(sys.executable).parent / "moto_server")
        self.procs.append(
            subprocess.Popen(
                [moto, "-H", "127.0.0.1", "-p", str(moto_port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        wait_healthy(f"{self.moto_url}/moto-api/", self.procs[-1], "moto_server")

    def triggerfish_key(self) -> tuple[str, str]:
        env = {**os.environ, "TRIGGERFISH_URL": self.tf_url}
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "triggerfish",
                "keys",
                "create",
                "--name",
                "bench",
                "--json",
                "--data-dir",
                str(self.work / "data"),
            ],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        body = json.loads(done.stdout)
        return body["id"], body["secret"]

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


def client(url: str, key: tuple[str, str]) -> BaseClient:
    config = Config(max_pool_connections=CLIENTS * 2, retries={"max_attempts": 0})
    return boto3.client(
        "s3",
        endpoint_url=url,
        aws_access_key_id=key[0],
        aws_secret_access_key=key[1],
        region_name="us-east-1",
        config=config,
    )


def run_concurrently(count: int, call: Callable[[int], None]) -> float:
    """Seconds to make ``count`` calls from CLIENTS threads."""
    started = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        for future in [pool.submit(call, n) for n in range(count)]:
            future.result()
    return time.perf_counter() - started


def throughput(s3: BaseClient, size: int, count: int) -> dict[str, float]:
    bucket = f"bench-{size}"
    s3.create_bucket(Bucket=bucket)
    body = os.urandom(size)
    put = run_concurrently(count, lambda n: s3.put_object(Bucket=bucket, Key=f"o/{n}", Body=body))

    def get(n: int) -> None:
        s3.get_object(Bucket=bucket, Key=f"o/{n}")["Body"].read()

    got = run_concurrently(count, get)
    return {
        "put_rps": count / put,
        "put_mbps": count * size / MB / put,
        "get_rps": count / got,
        "get_mbps": count * size / MB / got,
    }


def trigger_latency(s3: BaseClient, out: Path, samples: int) -> dict[str, float]:
    s3.create_bucket(Bucket="latency")
    s3.put_object(Bucket="latency", Key="probe/warm", Body=b"w")  # a warm environment
    deadline = time.time() + 60
    while "probe/warm" not in (out.read_text() if out.exists() else "") and time.time() < deadline:
        time.sleep(0.05)
    sent: dict[str, float] = {}
    for n in range(samples):
        key = f"probe/{n}"
        sent[key] = time.time()
        s3.put_object(Bucket="latency", Key=key, Body=b"x" * 1024)
        time.sleep(0.02)
    started: dict[str, float] = {}
    deadline = time.time() + 60
    while len(started) < samples and time.time() < deadline:
        for line in out.read_text().splitlines():
            key, _, stamp = line.rpartition(" ")
            if key in sent:
                started[key] = float(stamp)
        time.sleep(0.1)
    waits = sorted((started[k] - sent[k]) * 1000 for k in started)
    if not waits:
        return {"p50_ms": float("nan"), "p99_ms": float("nan"), "samples": 0}
    p99 = waits[min(len(waits) - 1, int(len(waits) * 0.99))]
    return {"p50_ms": statistics.median(waits), "p99_ms": p99, "samples": len(waits)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.s3_bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer requests")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the figures here")
    args = parser.parse_args(argv)
    small_n, large_n, samples = (200, 16, 30) if args.quick else (2000, 64, 200)
    console = Console()
    work = Path(tempfile.mkdtemp(prefix="s3bench-"))
    servers = Servers(work)
    figures: dict[str, Any] = {}
    try:
        servers.start()
        systems = {
            "triggerfish": client(servers.tf_url, servers.triggerfish_key()),
            "moto": client(servers.moto_url, ("testing", "testing")),
        }
        for name, s3 in systems.items():
            console.print(f"[bold]{name}[/]: 4 KB x {small_n}, 8 MB x {large_n} ...")
            figures[name] = {
                "4KB": throughput(s3, 4 * KB, small_n),
                "8MB": throughput(s3, 8 * MB, large_n),
            }
        console.print("bucket trigger latency ...")
        figures["trigger"] = trigger_latency(systems["triggerfish"], servers.handler_out, samples)
    finally:
        servers.stop()
        shutil.rmtree(work, ignore_errors=True)
    render(console, figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


def render(console: Console, figures: dict[str, Any]) -> None:
    table = Table(title=f"S3 API, {CLIENTS} concurrent boto3 clients", title_justify="left")
    for column in ("figure", "triggerfish", "moto", "triggerfish / moto"):
        table.add_column(column, justify="right" if column != "figure" else "left")
    for size in ("4KB", "8MB"):
        for op in ("put", "get"):
            for unit, label in (("rps", "requests/s"), ("mbps", "MB/s")):
                name = f"{op}_{unit}"
                ours = figures["triggerfish"][size][name]
                theirs = figures["moto"][size][name]
                ratio = ours / theirs if theirs else float("nan")
                colour = "green" if ratio >= 1 else "red"
                table.add_row(
                    f"{'Put' if op == 'put' else 'Get'}Object {size}, {label}",
                    f"{ours:,.1f}",
                    f"{theirs:,.1f}",
                    f"[{colour}]{ratio:.2f}x[/]",
                )
    trigger = figures["trigger"]
    table.add_row("upload -> handler start p50, ms", f"{trigger['p50_ms']:.1f}", "n/a", "")
    table.add_row("upload -> handler start p99, ms", f"{trigger['p99_ms']:.1f}", "n/a", "")
    console.print(table)
    console.print(f"[dim]trigger latency over {trigger['samples']} uploads[/]")


if __name__ == "__main__":
    threading.current_thread().name = "s3-bench"
    main()
