"""Warm synchronous invoke, Triggerfish beside Google's ``functions-framework``.

``python -m bench.invoke_bench`` starts a fresh ``triggerfish up`` with a no-op function
and ``functions-framework --asgi`` serving the same no-op, then drives each in turn with
the same number of concurrent clients for the same time, over several interleaved rounds:

- ``lambda-boto3``: boto3's ``lambda`` client ``invoke`` (SigV4-signed, through the
  Lambda Invoke API), one client per thread;
- ``lambda-http``: the same Lambda Invoke API with a Bearer token, from the HTTP client
  below (what the server spends on the Lambda path, without boto3's own cost);
- ``native-http``: ``POST /v1/functions/noop/invoke`` with a Bearer token;
- ``ff-http``: ``POST /`` on ``functions-framework --target handler --asgi``;
- ``ff-boto3``: boto3's ``lambda`` client ``invoke`` against functions-framework (which
  answers any path): the same client as ``lambda-boto3``, so that the two compare
  servers, not clients. Its requests are signed too, but nothing checks them.

The plain-HTTP systems are driven by the same client, ``wrk`` by default (written in C,
so on a small machine the servers, not the client, are measured; a Lua script sets the
POST body and headers), else bare HTTP/1.1 or httpx from Python (``--client``): one
keep-alive connection per client either way. boto3 always runs in Python, its clients
spread over ``--procs`` processes so that one interpreter's lock does not cap the load.
Every request/s figure counts successful calls only; latency is the call time as the
client sees it; "cpu us" is the CPU time (user and system) that the system's processes
spent per successful call: the server and, for Triggerfish, its function's workers.

Fairness: each system serves the same no-op handler, gets the same connections, the same
request body (``{}``) and the same time, in interleaved rounds on the same machine.
functions-framework runs its handler inside its one server process; every Triggerfish
invocation also crosses a process boundary to a warm worker (``--workers`` of them) and
is recorded (an invocation record, metrics), as it is in production.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx

from bench.triggerfish_core import free_port

WRK_SCRIPT = """\
wrk.method = "POST"
wrk.body = "{}"
wrk.headers["Content-Type"] = "application/json"
local token = os.getenv("BENCH_TOKEN")
if token ~= nil and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH %d %d %d %d %d %d %d %.3f %.3f\\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""

SYSTEMS = ("lambda-boto3", "lambda-http", "native-http", "ff-boto3", "ff-http")
PEER = "ff-http"
#: Each system's peer: functions-framework driven by the same client.
PEERS = {"lambda-boto3": "ff-boto3", "ff-boto3": "ff-boto3"}
LAMBDA_PATH = "/2015-03-31/functions/noop/invocations"
HANDLER = """\
def handler(event, context):
    return {"ok": True}
"""
FF_HANDLER = """\
def handler(request):
    return {"ok": True}
"""


@dataclass
class Target:
    system: str
    url: str
    path: str = "/"
    token: str = ""
    key_id: str = ""
    secret: str = ""
    pid: int = 0  # the server's process: its CPU and its children's is measured


@dataclass
class Figures:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    calls: int
    errors: int
    first_error: str = ""
    cpu_us_per_call: float = 0.0  # the system's processes, server and workers


def stat_fields(pid: int | str) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (index 0 is the state,
    field 3 of stat(5)), or None when the process is gone. The command name may hold
    spaces and parentheses, so fields start after the last ')'."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()


def cpu_ticks(fields: list[str], *, children: bool = False) -> int:
    """utime + stime (fields 14-15 of stat(5)), plus cutime + cstime (16-17): the time
    of children the process has waited for, when ``children``."""
    return sum(int(value) for value in fields[11 : 15 if children else 13])


def children_map() -> dict[int, list[int]]:
    """Each live process's children, from ``/proc``; empty where it is not there to read."""
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if not entry.isdigit():
            continue
        fields = stat_fields(entry)
        if fields is not None:
            kids.setdefault(int(fields[1]), []).append(int(entry))
    return kids


def process_tree(roots: Iterable[int]) -> list[int]:
    """``roots`` and all their live descendants."""
    kids = children_map()
    out: list[int] = []
    todo = list(roots)
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(kids.get(pid, []))
    return out


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system, all its threads) used so far by one process; 0.0
    when it is gone or ``/proc`` is not there to read."""
    fields = stat_fields(pid)
    if fields is None:
        return 0.0
    return cpu_ticks(fields) / (os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100)


def tree_cpu(root: int) -> float:
    """CPU seconds (user + system) used so far by ``root`` and its live descendants;
    0.0 where ``/proc`` is not there to read."""
    if not os.path.isdir("/proc"):
        return 0.0
    return sum(process_cpu(pid) for pid in process_tree([root]))


def percentile(sorted_samples: list[float], q: float) -> float:
    index = min(len(sorted_samples) - 1, round(q * (len(sorted_samples) - 1)))
    return sorted_samples[index]


def wait_healthy(
    url: str, process: subprocess.Popen[bytes], what: str, log: Path | None = None
) -> None:
    """Return once ``url`` answers below 500; raise, with the end of ``log``, when
    ``process`` exits first or a minute passes."""

    def tail() -> str:
        return f":\n{log.read_text()[-3000:]}" if log is not None else ""

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited early{tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer at {url}{tail()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@contextlib.contextmanager
def deployed_node(
    work: Path, project: Path, env: dict[str, str]
) -> Iterator[tuple[subprocess.Popen[bytes], str, str]]:
    """A fresh ``triggerfish up`` (data in ``work/data``) with ``project`` deployed:
    its process, URL and admin token; stopped on exit."""
    env = {k: v for k, v in env.items() if k != "TRIGGERFISH_TOKEN"}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    data = work / "data"
    log = work / "triggerfish.log"
    command = [sys.executable, "-m", "triggerfish"]
    with log.open("ab") as out:
        process = subprocess.Popen(
            [*command, "up", "--port", str(port), "--data-dir", str(data)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        wait_healthy(f"{url}/healthz", process, "triggerfish up", log)
        token = (data / "admin.token").read_text().split()[0]
        subprocess.run(
            [*command, "deploy", str(project)],
            env={**env, "TRIGGERFISH_URL": url, "TRIGGERFISH_TOKEN": token},
            check=True,
            capture_output=True,
        )
        yield process, url, token
    finally:
        stop(process)


@contextlib.contextmanager
def triggerfish(work: Path, workers: int, source: Path | None = None) -> Iterator[Target]:
    """``source``: run Triggerfish from this source tree (its ``src`` first on the path)."""
    code = work / "project" / "noop"
    code.mkdir(parents=True)
    (code / "main.py").write_text(HANDLER)
    (work / "project" / "triggerfish.yaml").write_text(
        "functions:\n"
        "  noop:\n"
        "    code: ./noop\n"
        "    handler: main.handler\n"
        f"    max_concurrency: {workers}\n"
        f"    min_warm: {workers}\n"
    )
    # Default settings: a call waits up to 1 s (throttle_wait) for a free environment.
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIGGERFISH_")}
    if source is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(source / "src"), env.get("PYTHONPATH", "")])
    with deployed_node(work, work / "project", env) as (process, url, token):
        key = httpx.post(
            f"{url}/v1/keys", headers={"Authorization": f"Bearer {token}"}, json={"name": "bench"}
        ).json()
        yield Target(
            "",
            url,
            "/v1/functions/noop/invoke",
            token,
            key_id=key["id"],
            secret=key["secret"],
            pid=process.pid,
        )


def ff_executable() -> str:
    beside = Path(sys.executable).parent / "functions-framework"
    found = str(beside) if beside.exists() else shutil.which("functions-framework")
    if found is None:
        raise RuntimeError("functions-framework is not installed: pip install functions-framework")
    return found


@contextlib.contextmanager
def functions_framework(work: Path) -> Iterator[Target]:
    source = work / "ff" / "main.py"
    source.parent.mkdir(parents=True)
    source.write_text(FF_HANDLER)
    port = free_port()
    log = work / "ff.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [
                *(ff_executable(), "--target", "handler", "--source", str(source), "--asgi"),
                *("--host", "127.0.0.1", "--port", str(port)),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, process, "functions-framework", log)
        yield Target(PEER, url, pid=process.pid)
    finally:
        stop(process)


# -- load, in worker processes ---------------------------------------------------------


def http_load(target: Target, clients: int, seconds: float) -> tuple[list[float], int, str]:
    async def run() -> tuple[list[float], int, str]:
        samples: list[float] = []
        errors = 0
        first = ""
        headers = {"content-type": "application/json"}
        if target.token:
            headers["authorization"] = f"Bearer {target.token}"
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        async with httpx.AsyncClient(
            base_url=target.url, headers=headers, limits=limits, timeout=60
        ) as client:
            deadline = time.perf_counter() + seconds

            async def loop() -> None:
                nonlocal errors, first
                while time.perf_counter() < deadline:
                    began = time.perf_counter()
                    try:
                        response = await client.post(target.path, content=b"{}")
                        ok = response.status_code == 200
                        why = f"{response.status_code} {response.text[:200]}"
                    except httpx.HTTPError as exc:
                        ok, why = False, f"{type(exc).__name__}: {exc}"
                    if ok:
                        samples.append(time.perf_counter() - began)
                    else:
                        errors += 1
                        first = first or why

            await asyncio.gather(*(loop() for _ in range(clients)))
        return samples, errors, first

    return asyncio.run(run())


def raw_load(target: Target, clients: int, seconds: float) -> tuple[list[float], int, str]:
    """The same calls over bare HTTP/1.1 keep-alive connections: a client that costs
    little CPU, so that on a small machine the servers, not the client, are measured."""
    host, _, port = target.url.removeprefix("http://").partition(":")
    head = [
        f"POST {target.path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        "Content-Length: 2",
    ]
    if target.token:
        head.append(f"Authorization: Bearer {target.token}")
    request = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + b"{}"

    async def run() -> tuple[list[float], int, str]:
        samples: list[float] = []
        errors = 0
        first = ""
        deadline = time.perf_counter() + seconds

        async def loop() -> None:
            nonlocal errors, first
            reader, writer = await asyncio.open_connection(host, int(port))
            try:
                while time.perf_counter() < deadline:
                    began = time.perf_counter()
                    writer.write(request)
                    header = await reader.readuntil(b"\r\n\r\n")
                    length = 0
                    for line in header.split(b"\r\n")[1:]:
                        name, _, value = line.partition(b":")
                        if name.strip().lower() == b"content-length":
                            length = int(value)
                    body = await reader.readexactly(length)
                    if header[9:12] == b"200":
                        samples.append(time.perf_counter() - began)
                    else:
                        errors += 1
                        first = first or (header[:12] + b" " + body[:200]).decode("latin-1")
            finally:
                writer.close()

        await asyncio.gather(*(loop() for _ in range(clients)))
        return samples, errors, first

    return asyncio.run(run())


def boto3_load(target: Target, clients: int, seconds: float) -> tuple[list[float], int, str]:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    config = Config(retries={"total_max_attempts": 1}, max_pool_connections=2)
    lambdas = [
        boto3.session.Session().client(
            "lambda",
            endpoint_url=target.url,
            aws_access_key_id=target.key_id,
            aws_secret_access_key=target.secret,
            region_name="us-east-1",
            config=config,
        )
        for _ in range(clients)
    ]
    samples: list[float] = []
    errors = [0]
    first: list[str] = []
    deadline = time.perf_counter() + seconds

    def loop(client: Any) -> None:
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            try:
                reply = client.invoke(FunctionName="noop", Payload=b"{}")
                reply["Payload"].read()
                ok = reply["StatusCode"] == 200 and "FunctionError" not in reply
                why = "function error"
            except (BotoCoreError, ClientError) as exc:
                ok, why = False, f"{type(exc).__name__}: {exc}"
            if ok:
                samples.append(time.perf_counter() - began)
            else:
                errors[0] += 1
                if not first:
                    first.append(why)

    threads = [threading.Thread(target=loop, args=(c,)) for c in lambdas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return samples, errors[0], first[0] if first else ""


def wrk_load(target: Target, clients: int, seconds: float, threads: int, work: Path) -> Figures:
    script = work / "invoke.lua"
    if not script.exists():
        script.write_text(WRK_SCRIPT)
    command = [
        *("wrk", "-t", str(min(threads, clients)), "-c", str(clients)),
        *("-d", f"{seconds:g}s", "--timeout", "60s", "-s", str(script)),
        target.url + target.path,
    ]
    env = {**os.environ, "BENCH_TOKEN": target.token}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    fields = line.split()[1:]
    requests, duration_us, *error_counts = (int(x) for x in fields[:7])
    p50_us, p99_us = float(fields[7]), float(fields[8])
    errors = sum(error_counts)
    ok = requests - error_counts[3]  # non-2xx answers are counted in requests too
    first = ""
    if errors:
        first = f"wrk: connect/read/write/status/timeout errors {error_counts}"
        if error_counts[3]:
            first += "; a probe call answered: " + probe(target)
    return Figures(
        requests_per_s=ok / (duration_us / 1e6),
        p50_ms=p50_us / 1000,
        p99_ms=p99_us / 1000,
        calls=ok,
        errors=errors,
        first_error=first,
    )


def probe(target: Target) -> str:
    headers = {"content-type": "application/json"}
    if target.token:
        headers["authorization"] = f"Bearer {target.token}"
    try:
        reply = httpx.post(target.url + target.path, content=b"{}", headers=headers, timeout=60)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    return f"{reply.status_code} {reply.text[:200]}"


def _worker(args: tuple[str, Target, int, float]) -> tuple[list[float], int, str]:
    kind, target, clients, seconds = args
    load = {"boto3": boto3_load, "httpx": http_load, "raw": raw_load}[kind]
    return load(target, clients, seconds)


def measure(
    pool: Any, kind: str, target: Target, clients: int, procs: int, seconds: float
) -> Figures:
    shares = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
    parts = pool.map(_worker, [(kind, target, n, seconds) for n in shares if n])
    samples = sorted(s for part in parts for s in part[0])
    errors = sum(part[1] for part in parts)
    first = next((part[2] for part in parts if part[2]), "")
    if not samples:
        return Figures(0.0, 0.0, 0.0, 0, errors, first)
    # Each worker's window opens once its clients are made and lasts ``seconds``.
    return Figures(
        requests_per_s=len(samples) / seconds,
        p50_ms=percentile(samples, 0.50) * 1000,
        p99_ms=percentile(samples, 0.99) * 1000,
        calls=len(samples),
        errors=errors,
        first_error=first,
    )


# -- the run ---------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.invoke_bench", description=__doc__)
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients (32)")
    parser.add_argument("--seconds", type=float, default=10.0, help="per measurement (10)")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds (3)")
    parser.add_argument("--procs", type=int, default=2, help="client processes (2)")
    parser.add_argument("--workers", type=int, default=2, help="the no-op's warm environments (2)")
    parser.add_argument(
        "--client",
        choices=("wrk", "raw", "httpx"),
        default="wrk" if shutil.which("wrk") else "raw",
        help="HTTP client of the plain-HTTP systems: wrk (the default when installed), "
        "bare HTTP/1.1 from Python (raw) or httpx",
    )
    parser.add_argument(
        "--wrk-threads",
        type=int,
        default=1,
        help="wrk's threads (1: it leaves the cores "
        "to the servers, and one thread drives 32 connections well past 10,000 req/s)",
    )
    parser.add_argument("--quick", action="store_true", help="2 s, 1 round")
    parser.add_argument("--only", action="append", choices=SYSTEMS, help="run only these")
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="DIR",
        help="also run Triggerfish from this source tree (say, `git archive HEAD` unpacked) "
        "as the systems base:..., interleaved with the others: an A/B in one run",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the figures here")
    return parser.parse_args(argv)


def render(runs: dict[str, list[Figures]], clients: int, client: str) -> str:
    def median(system: str, pick: Callable[[Figures], float]) -> float:
        return statistics.median(pick(f) for f in runs[system]) if runs.get(system) else 0.0

    def peer_rps(system: str) -> float:
        peer = PEERS.get(system.removeprefix("base:"), PEER)
        return median(peer, lambda f: f.requests_per_s)

    order = [*SYSTEMS, *(f"base:{system}" for system in SYSTEMS)]
    lines = [
        f"warm synchronous invoke, {clients} concurrent clients, HTTP client {client} "
        "(median of rounds)",
        f"{'system':<19}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'cpu us':>8}{'vs ff':>8}"
        "  rounds (req/s)",
    ]
    for system in order:
        if not runs.get(system):
            continue
        rps = median(system, lambda f: f.requests_per_s)
        peer = peer_rps(system)
        ratio = f"{rps / peer:.2f}x" if peer else "-"
        rounds = ", ".join(f"{f.requests_per_s:,.0f}" for f in runs[system])
        lines.append(
            f"{system:<19}{rps:>9,.0f}{median(system, lambda f: f.p50_ms):>9.2f}"
            f"{median(system, lambda f: f.p99_ms):>9.2f}"
            f"{median(system, lambda f: f.cpu_us_per_call):>8.0f}{ratio:>8}  {rounds}"
        )
        errors = sum(f.errors for f in runs[system])
        if errors:
            first = next(f.first_error for f in runs[system] if f.first_error)
            lines.append(f"  {errors} failed call(s); first: {first}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    seconds = 2.0 if args.quick else args.seconds
    repeat = 1 if args.quick else args.repeat
    systems = args.only or list(SYSTEMS)
    if args.baseline is not None:
        # Each system beside its baseline, so that the two see the same moment.
        systems = [
            name
            for system in systems
            for name in ((system,) if system.startswith("ff-") else (system, f"base:{system}"))
        ]
    runs: dict[str, list[Figures]] = {system: [] for system in systems}
    context = multiprocessing.get_context("spawn")
    with (
        tempfile.TemporaryDirectory(prefix="tf-invoke-bench-") as tmp,
        context.Pool(args.procs) as pool,
        triggerfish(Path(tmp) / "tf", args.workers) as tf,
        functions_framework(Path(tmp) / "peer") as ff,
        contextlib.ExitStack() as more,
    ):
        targets = {
            "lambda-boto3": ("boto3", tf),
            "lambda-http": (args.client, replace(tf, path=LAMBDA_PATH)),
            "native-http": (args.client, tf),
            "ff-boto3": ("boto3", replace(ff, key_id="unchecked", secret="unchecked")),
            "ff-http": (args.client, ff),
        }
        if args.baseline is not None:
            base = more.enter_context(
                triggerfish(Path(tmp) / "base", args.workers, args.baseline.resolve())
            )
            targets["base:lambda-boto3"] = ("boto3", base)
            targets["base:lambda-http"] = (args.client, replace(base, path=LAMBDA_PATH))
            targets["base:native-http"] = (args.client, base)

        def run(kind: str, target: Target, seconds: float) -> Figures:
            before = tree_cpu(target.pid)
            if kind == "wrk":
                figures = wrk_load(target, args.clients, seconds, args.wrk_threads, Path(tmp))
            else:
                figures = measure(pool, kind, target, args.clients, args.procs, seconds)
            if figures.calls:
                figures.cpu_us_per_call = (tree_cpu(target.pid) - before) / figures.calls * 1e6
            return figures

        for system in systems:  # warm up: environments started, connections open
            run(*targets[system], 1.0)
        for round_ in range(repeat):
            for system in systems:
                figures = run(*targets[system], seconds)
                runs[system].append(figures)
                print(
                    f"round {round_ + 1} {system:<18} {figures.requests_per_s:>8,.0f} req/s  "
                    f"p50 {figures.p50_ms:6.2f} ms  p99 {figures.p99_ms:7.2f} ms  "
                    f"server cpu {figures.cpu_us_per_call:5.0f} us/call"
                    + (f"  errors {figures.errors}" if figures.errors else ""),
                    flush=True,
                )
    print(render(runs, args.clients, args.client))
    if args.json:
        args.json.write_text(
            json.dumps({s: [vars(f) for f in figures] for s, figures in runs.items()}, indent=2)
        )
    return 0 if all(f.calls for figures in runs.values() for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
