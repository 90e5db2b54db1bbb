"""Durable executions beside plain invocations of the same work.

``python -m bench.durable_bench`` starts a fresh ``triggerfish up`` with two functions
doing the same three pieces of work: ``durable3``, a handler written with AWS's Durable
Execution SDK whose three pieces are ``context.step`` calls (each checkpointed through
the Lambda API), and ``plain3``, a plain handler that calls them in turn. It then drives
each with the same number of concurrent clients (synchronous ``Invoke`` with a Bearer
token) for the same time, and prints:

- executions (or invocations) completed per second, each with its three steps;
- the p50 of one step as the handler sees it: for ``durable3`` the checkpoint round
  trip of the step (the SDK waits for it before the step returns), for ``plain3`` the
  bare call.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench.triggerfish_core import free_port

DURABLE = """\
import time
from aws_durable_execution_sdk_python import DurableContext, durable_execution


def work(n):
    return sum(range(n))


@durable_execution
def handler(event, context: DurableContext):
    took = []
    for name in ("reserve", "charge", "ship"):
        start = time.perf_counter()
        context.step(lambda _: work(1000), name=name)
        took.append(time.perf_counter() - start)
    return {"steps": took}
"""

PLAIN = """\
import time


def work(n):
    return sum(range(n))


def handler(event, context):
    took = []
    for name in ("reserve", "charge", "ship"):
        start = time.perf_counter()
        work(1000)
        took.append(time.perf_counter() - start)
    return {"steps": took}
"""


def project(root: Path, concurrency: int) -> Path:
    settings = f"    max_concurrency: {concurrency}\n    min_warm: {concurrency}\n"
    manifest = "functions:\n"
    for name, source, extra in (
        ("durable3", DURABLE, "    durable: {execution_timeout: 1h, retention: 1d}\n"),
        ("plain3", PLAIN, ""),
    ):
        (root / name).mkdir(parents=True)
        (root / name / "main.py").write_text(source)
        manifest += f"  {name}:\n    handler: main.handler\n    code: ./{name}\n{settings}{extra}"
    path = root / "triggerfish.yaml"
    path.write_text(manifest)
    return path


def drive(url: str, token: str, function: str, clients: int, seconds: float) -> dict[str, Any]:
    done: list[int] = [0] * clients
    steps: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client(index: int) -> None:
        with httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as api:
            while time.monotonic() < stop:
                reply = api.post(f"/2015-03-31/functions/{function}/invocations", content=b"{}")
                if reply.status_code != 200 or "x-amz-function-error" in reply.headers:
                    continue
                body = reply.json()
                with lock:
                    steps.extend(body["steps"])
                done[index] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    return {
        "per_second": sum(done) / elapsed,
        "step_p50_ms": statistics.median(steps) * 1000 if steps else float("nan"),
        "completed": sum(done),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="durable-bench-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIGGERFISH_")}
    log = (root / "server.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "triggerfish",
            "up",
            "--port",
            str(port),
            "--data-dir",
            str(root / "data"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).json().get("status") == "ok":
                    break
            except (httpx.HTTPError, ValueError):
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit(f"the server did not start; see {root / 'server.log'}")
            time.sleep(0.1)
        token = (root / "data" / "admin.token").read_text().split()[0]
        cli_env = {**env, "TRIGGERFISH_URL": url, "TRIGGERFISH_TOKEN": token}
        manifest = project(root / "project", args.clients)
        subprocess.run(
            [sys.executable, "-m", "triggerfish", "deploy", str(manifest)],
            env=cli_env,
            check=True,
            capture_output=True,
        )
        for function in ("durable3", "plain3"):  # warm up
            drive(url, token, function, args.clients, 2.0)
        results = {
            function: drive(url, token, function, args.clients, args.seconds)
            for function in ("durable3", "plain3")
        }
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
        log.close()
    print(f"{'':<30}{'durable (SDK)':>16}{'plain':>16}")
    d, p = results["durable3"], results["plain3"]
    print(f"{'completed per second (3 steps)':<30}{d['per_second']:>16.1f}{p['per_second']:>16.1f}")
    print(f"{'p50 of one step (ms)':<30}{d['step_p50_ms']:>16.3f}{p['step_p50_ms']:>16.4f}")
    print(json.dumps({"clients": args.clients, "seconds": args.seconds, **results}))


if __name__ == "__main__":
    main()
