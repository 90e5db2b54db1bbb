"""Triggerfish in the core workloads, driven only through its command and HTTP API.

Each workload starts a fresh ``triggerfish up`` in a new data directory, deploys
``bench/functions``, runs, and stops the server with SIGTERM. What is measured:

- throughput: events wait in topic ``bench-tp`` with no consumer; consumption starts
  with ``triggerfish deploy bench/functions-tp`` (the trigger, ``start: earliest``); the
  figure spans the first handler start to the last handler end, read from
  ``GET /v1/invocations``.
- latency: one event per request to topic ``bench`` at a steady rate; per event, the
  invocation's ``started_at`` minus the time taken just before the publish request.
- sync: concurrent clients POST ``/v1/functions/noop/invoke``; latency as the client
  sees it, retries of a 429 included.

Anything the server does not do as expected raises ``TriggerfishUnavailableError``
with what was asked, what came back and the tail of the server's log.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.workload import WARMUP_EVENTS, Plan, Result, latency_figures, make_payload, paced

BENCH_DIR = Path(__file__).resolve().parent
FUNCTIONS = BENCH_DIR / "functions"
FUNCTIONS_TP = BENCH_DIR / "functions-tp"
FUNCTIONS_TP_ORDERED = BENCH_DIR / "functions-tp-ordered"
ORDERED_KEYS = 100
BATCH = 500
STARTUP_SECONDS = 30.0
SYNC_WARMUP_CALLS = 20
POLL_SECONDS = 0.25
STALL_SECONDS = 2.0  # no new invocation for this long: read all again
PAGE = 1000


class TriggerfishUnavailableError(RuntimeError):
    """The server or its command did not behave as the benchmark's contract says."""


def find_executable() -> Path:
    beside = Path(sys.executable).parent / "triggerfish"
    if beside.exists():
        return beside
    found = shutil.which("triggerfish")
    if found is None:
        raise TriggerfishUnavailableError(
            "the `triggerfish` command is not installed (pip install -e . in this checkout)"
        )
    return Path(found)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts connections on ``host:port``."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def rfc3339_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def make_event(run: str, i: int, *, keys: int = 0) -> dict[str, Any]:
    """``keys``: give the data a ``shard`` of that many values (the ordered variant)."""
    data = make_payload(i)
    if keys:
        data = {**data, "shard": i % keys}
    return {
        "specversion": "1.0",
        "id": f"{run}-{i}",
        "source": "/bench/core",
        "type": "bench.noop",
        "time": rfc3339_now(),
        "datacontenttype": "application/json",
        "data": data,
    }


class KeptAlive:
    """Publishes one structured CloudEvent per request over one kept-alive HTTP/1.1
    connection, written by hand. The latency workload times from just before the
    publish, so the client's own cost counts: this one writes the request in a few
    microseconds, as redis-py writes the peers' commands, where httpx added about
    0.15 ms to the median here."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        host, _, port = url.removeprefix("http://").partition(":")
        self._address = (host, int(port))
        lines = [f"Host: {host}:{port}", "Content-Type: application/cloudevents+json"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self._head = "\r\n".join(lines)
        self._socket: socket.socket | None = None
        self._buffer = b""

    def __enter__(self) -> KeptAlive:
        self._socket = socket.create_connection(self._address)
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._socket is not None:
            self._socket.close()

    def publish(self, topic: str, event: dict[str, Any]) -> None:
        assert self._socket is not None
        body = orjson.dumps(event)
        request = (
            f"POST /v1/topics/{topic}/events HTTP/1.1\r\n{self._head}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode("latin-1")
        self._socket.sendall(request + body)
        status, reply = self._response()
        if status != 202:
            raise RuntimeError(f"publish answered {status}: {reply[:300]!r}")

    def _response(self) -> tuple[int, bytes]:
        assert self._socket is not None
        while b"\r\n\r\n" not in self._buffer:
            self._buffer += self._receive()
        head, _, rest = self._buffer.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            rest += self._receive()
        self._buffer = rest[length:]
        return int(head[9:12]), rest[:length]

    def _receive(self) -> bytes:
        assert self._socket is not None
        chunk = self._socket.recv(65536)
        if not chunk:
            raise RuntimeError("the server closed the connection")
        return chunk


class TriggerfishServer:
    """One ``triggerfish up`` process on a free port with its own data directory."""

    def __init__(self, executable: Path, *, env: dict[str, str] | None = None) -> None:
        self._exe = executable
        self._env = env
        self._dir = Path(tempfile.mkdtemp(prefix="tfbench-triggerfish-"))
        self.data = self._dir / "data"
        self._log_path = self._dir / "server.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = ""

    def __enter__(self) -> TriggerfishServer:
        return self  # started already by ``start()``; leaving the block stops it

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def pid(self) -> int:
        """The server's process id (after ``start``)."""
        assert self._proc is not None, "the server is not started"
        return self._proc.pid

    def start(self) -> None:
        data = self.data
        with self._log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [str(self._exe), "up", "--data-dir", str(data), "--port", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=None if self._env is None else {**os.environ, **self._env},
            )
        deadline = time.monotonic() + STARTUP_SECONDS
        while not self._healthy():
            self.check()
            if time.monotonic() > deadline:
                raise self.unavailable(f"GET {self.url}/healthz did not answer 200 in time")
            time.sleep(0.05)
        token_file = data / "admin.token"
        while not token_file.exists() or not token_file.read_text().strip():
            if time.monotonic() > deadline:
                raise self.unavailable(f"{token_file} was not written")
            time.sleep(0.05)
        self.token = token_file.read_text().splitlines()[0].strip()

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def check(self) -> None:
        """Raise if the server process has exited."""
        if self._proc is not None and self._proc.poll() is not None:
            raise self.unavailable(f"`triggerfish up` exited with code {self._proc.returncode}")

    def log_tail(self, lines: int = 12) -> str:
        try:
            text = self._log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def unavailable(self, what: str) -> TriggerfishUnavailableError:
        tail = self.log_tail()
        return TriggerfishUnavailableError(f"{what}" + (f"; server log:\n{tail}" if tail else ""))

    def deploy(self, path: Path) -> None:
        env = {**os.environ, "TRIGGERFISH_URL": self.url, "TRIGGERFISH_TOKEN": self.token}
        done = subprocess.run(
            [str(self._exe), "deploy", str(path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            output = "\n".join((done.stdout + done.stderr).splitlines()[-12:])
            raise self.unavailable(
                f"`triggerfish deploy {path}` exited with {done.returncode}: {output}"
            )

    def kill(self) -> None:
        """kill -9 the server and the processes of its session (its environments)."""
        if self._proc is not None and self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait()

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGTERM)
            try:
                self._proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait()
        shutil.rmtree(self._dir, ignore_errors=True)


def expect(response: httpx.Response, status: int) -> Any:
    """The JSON body of ``response``; ``TriggerfishUnavailableError`` on another status."""
    if response.status_code != status:
        raise TriggerfishUnavailableError(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code} (expected {status}): {response.text[:300]}"
        )
    return response.json()


class InvocationFeed:
    """New invocations of one function, oldest first, each seen once.

    Follows ``next`` until a page comes back short; when the server gives ``null``
    the last cursor is asked again on the next poll and invocations already seen are
    skipped. A record stored after one with a later id would be passed over by the
    cursor, so ``rewind`` reads everything again from the start; ``late`` counts the
    invocations found only that way.
    """

    def __init__(self, client: httpx.Client, function: str) -> None:
        self._client = client
        self._function = function
        self._cursor: str = "0"
        self._seen: set[str] = set()
        self._passed = ""  # the cursor a rewind went back from
        self.late = 0

    def rewind(self) -> None:
        self._passed = max(self._passed, self._cursor)
        self._cursor = "0"

    def poll(self) -> list[dict[str, Any]]:
        fresh: list[dict[str, Any]] = []
        while True:
            params = {"function": self._function, "limit": str(PAGE), "after": self._cursor}
            body = expect(self._client.get("/v1/invocations", params=params), 200)
            page = body["invocations"]
            for inv in page:
                if inv["id"] not in self._seen:
                    self._seen.add(inv["id"])
                    fresh.append(inv)
                    self.late += inv["id"] <= self._passed
            if body.get("next") is not None:
                self._cursor = str(body["next"])
            if body.get("next") is None or len(page) < PAGE:
                return fresh


class Handled:
    """Events handled successfully, from invocation records."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}  # event id -> handler start (unix seconds)
        self.first = float("inf")
        self.last = 0.0
        self.failed = 0

    def add(self, invocations: Iterable[dict[str, Any]]) -> None:
        for inv in invocations:
            if inv.get("status") != "ok":
                self.failed += 1
                continue
            started = float(inv["started_at"])
            self.first = min(self.first, started)
            self.last = max(self.last, started + float(inv.get("duration_ms") or 0) / 1000)
            for event_id in inv.get("event_ids") or ():
                self.started.setdefault(event_id, started)

    def wait_for(
        self, feed: InvocationFeed, ids: set[str], server: TriggerfishServer, timeout: float
    ) -> None:
        deadline = time.monotonic() + timeout
        progressed = time.monotonic()
        while not ids.issubset(self.started):
            server.check()
            now = time.monotonic()
            if now > deadline:
                missing = len(ids - self.started.keys())
                raise TriggerfishUnavailableError(
                    f"{missing} of {len(ids)} events not handled in {timeout:.0f} s "
                    f"({self.failed} invocations did not end ok)"
                )
            if now - progressed > STALL_SECONDS:
                feed.rewind()
                progressed = now
            time.sleep(POLL_SECONDS)
            fresh = feed.poll()
            if fresh:
                progressed = time.monotonic()
            self.add(fresh)


def wait_drained(client: httpx.Client, function: str, timeout: float) -> None:
    """Wait until the function's triggers have nothing waiting, leased or to retry."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get("/v1/triggers", params={"function": function})
        triggers = expect(response, 200)["triggers"]
        if triggers and all(
            t["backlog"] == 0 and t["in_flight"] == 0 and t["waiting_retry"] == 0 for t in triggers
        ):
            return
        time.sleep(0.25)


def wrk_invoke(
    wrk: str, server: TriggerfishServer, clients: int, seconds: float
) -> tuple[list[str] | None, str]:
    """``POST /v1/functions/noop/invoke`` from wrk with ``clients`` connections for
    ``seconds``: its figures (requests, microseconds, non-2xx answers, timeouts, p50 and
    p99 in ms, as text), or None and the end of its output when it gave none."""
    body = orjson.dumps(make_payload(0)).decode()
    headers = "".join(
        f'wrk.headers["{name}"] = "{value}"\n'
        for name, value in {**server.headers, "Content-Type": "application/json"}.items()
    )
    script = (
        'wrk.method = "POST"\n'
        f"wrk.body = [[{body}]]\n"
        f"{headers}"
        "done = function(summary, latency, requests)\n"
        '  io.write(string.format("WRK %d %d %d %d %.3f %.3f\\n", summary.requests,\n'
        "    summary.duration, summary.errors.status, summary.errors.timeout,\n"
        "    latency:percentile(50) / 1000, latency:percentile(99) / 1000))\n"
        "end\n"
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as file:
        file.write(script)
    try:
        run = subprocess.run(
            [wrk, "-t2", f"-c{clients}", f"-d{int(seconds)}s",
             "-s", file.name, f"{server.url}/v1/functions/noop/invoke"],
            capture_output=True, text=True, timeout=seconds + 60, check=False,
        )  # fmt: skip
    finally:
        os.unlink(file.name)
    line = next((ln for ln in run.stdout.splitlines() if ln.startswith("WRK ")), None)
    if line is None:
        return None, f"{run.stdout[-300:]} {run.stderr[-300:]}"
    return line.split()[1:], ""


class TriggerfishCore:
    name = "triggerfish"

    def __init__(self, plan: Plan) -> None:
        self._plan = plan
        self._unavailable = ""

    def _server(self) -> TriggerfishServer:
        if self._unavailable:
            # The first failure to start says it all; do not wait again for each workload.
            raise TriggerfishUnavailableError(self._unavailable)
        try:
            server = TriggerfishServer(find_executable())
            try:
                server.start()
            except BaseException:
                server.stop()
                raise
        except TriggerfishUnavailableError as exc:
            self._unavailable = str(exc)
            raise
        return server

    def throughput(self) -> Result:
        """The backlog drained unordered, then the same events again by an ordered
        trigger (``ordering: {key: data.shard}`` over 100 keys), on the same server."""
        n = self._plan.throughput_events
        with (
            self._server() as server,
            httpx.Client(base_url=server.url, headers=server.headers, timeout=60) as client,
        ):
            server.deploy(FUNCTIONS)
            figures = self._drain(server, client, "bench-tp", FUNCTIONS_TP, "noop-tp", n)
            ordered = self._drain(
                server, client, "bench-tp-ordered", FUNCTIONS_TP_ORDERED, "noop-tp-ordered", n,
                keys=ORDERED_KEYS,
            )  # fmt: skip
            return Result.ok(
                **figures,
                ordered_events_per_s=ordered["events_per_s"],
                ordered_late_records=ordered["late_records"],
            )

    def _drain(
        self,
        server: TriggerfishServer,
        client: httpx.Client,
        topic: str,
        functions: Path,
        function: str,
        n: int,
        *,
        keys: int = 0,
    ) -> dict[str, float]:
        run = uuid.uuid4().hex[:8]
        began = time.perf_counter()
        for start in range(0, n, BATCH):
            batch = [make_event(run, i, keys=keys) for i in range(start, min(n, start + BATCH))]
            body = expect(
                client.post(
                    f"/v1/topics/{topic}/events",
                    content=orjson.dumps(batch),
                    headers={"Content-Type": "application/cloudevents-batch+json"},
                ),
                202,
            )
            if len(body["accepted"]) != len(batch):
                raise TriggerfishUnavailableError(
                    f"a batch of {len(batch)} events had {len(body['accepted'])} accepted"
                )
        publish_s = time.perf_counter() - began
        enabled = time.time()
        server.deploy(functions)
        # Watch the trigger's backlog while it drains (a cheap call), and read the
        # invocation records once it is done: reading them during the drain would
        # spend the server's CPU on the measurement.
        wait_drained(client, function, self._plan.drain_timeout())
        handled = Handled()
        ids = {f"{run}-{i}" for i in range(n)}
        feed = InvocationFeed(client, function)
        handled.wait_for(feed, ids, server, self._plan.drain_timeout())
        return {
            "late_records": float(feed.late),
            "events_per_s": n / (handled.last - handled.first),
            "seconds": handled.last - handled.first,
            "events_per_s_with_start": n / (handled.last - enabled),
            "events": float(n),
            "publish_per_s": n / publish_s,
        }

    def latency(self) -> Result:
        run = uuid.uuid4().hex[:8]
        with (
            self._server() as server,
            httpx.Client(base_url=server.url, headers=server.headers, timeout=30) as client,
            KeptAlive(server.url, server.headers) as publisher,
        ):
            server.deploy(FUNCTIONS)
            feed = InvocationFeed(client, "noop")
            handled = Handled()
            warm = {f"{run}-w{i}" for i in range(WARMUP_EVENTS)}
            for event_id in sorted(warm):
                publisher.publish("bench", {**make_event(run, 0), "id": event_id})
            handled.wait_for(feed, warm, server, 60)
            sent: dict[str, float] = {}
            for i in paced(self._plan.latency_rate, self._plan.latency_events):
                event = make_event(run, i)
                sent[event["id"]] = time.time()
                publisher.publish("bench", event)
            handled.wait_for(feed, set(sent), server, 60)
            return Result.ok(
                late_records=float(feed.late),
                **latency_figures([handled.started[k] - t for k, t in sent.items()]),
            )

    def sync(self) -> Result:
        with self._server() as server:
            server.deploy(FUNCTIONS)
            wrk = shutil.which("wrk")
            if wrk is not None:
                asyncio.run(self._sync_clients(server, warm_only=True))
                return self._sync_wrk(server, wrk)
            return asyncio.run(self._sync_clients(server))

    def _sync_wrk(self, server: TriggerfishServer, wrk: str) -> Result:
        """Drive the HTTP API with wrk: a Python HTTP client at 32 connections spends a
        whole core of its own and measures itself, not the server."""
        plan = self._plan
        figures, output = wrk_invoke(wrk, server, plan.sync_clients, plan.sync_seconds)
        if figures is None:
            return Result.failed(f"wrk gave no figures: {output}")
        requests, micros, bad, timeouts, p50, p99 = figures
        if int(bad) or int(timeouts):
            return Result.failed(f"{bad} non-2xx answers and {timeouts} timeouts under wrk")
        return Result.ok(
            requests_per_s=int(requests) / (int(micros) / 1e6),
            requests=float(requests),
            errors=0.0,
            throttled=0.0,
            p50_ms=float(p50),
            p99_ms=float(p99),
        )

    async def _sync_clients(self, server: TriggerfishServer, *, warm_only: bool = False) -> Result:
        plan = self._plan
        limits = httpx.Limits(max_connections=plan.sync_clients * 2)
        samples: list[float] = []
        errors: list[str] = []
        throttled = 0
        async with httpx.AsyncClient(
            base_url=server.url, headers=server.headers, timeout=30, limits=limits
        ) as client:

            async def call(payload: dict[str, Any]) -> None:
                nonlocal throttled
                while True:
                    response = await client.post("/v1/functions/noop/invoke", json=payload)
                    if response.status_code != 429:
                        expect(response, 200)
                        return
                    # At its concurrency limit the function answers 429: wait as asked
                    # (at most 10 ms) and call again; the retry counts in the latency.
                    throttled += 1
                    retry_after = float(response.headers.get("Retry-After", "0") or 0)
                    await asyncio.sleep(min(retry_after, 0.01))

            for i in range(SYNC_WARMUP_CALLS):
                await call(make_payload(i))
            if warm_only:
                return Result.ok()

            async def client_loop(k: int, deadline: float) -> None:
                payload = make_payload(k)
                while time.perf_counter() < deadline:
                    began = time.perf_counter()
                    try:
                        await call(payload)
                    except (httpx.HTTPError, TriggerfishUnavailableError) as exc:
                        errors.append(f"{type(exc).__name__}: {exc}")
                        if len(errors) > 1000:
                            return
                        continue
                    samples.append(time.perf_counter() - began)

            began = time.perf_counter()
            deadline = began + plan.sync_seconds
            await asyncio.gather(*(client_loop(k, deadline) for k in range(plan.sync_clients)))
            elapsed = time.perf_counter() - began
        if not samples:
            return Result.failed(f"no call succeeded; first error: {errors[:1]}")
        return Result.ok(
            requests_per_s=len(samples) / elapsed,
            requests=float(len(samples)),
            errors=float(len(errors)),
            throttled=float(throttled),
            **latency_figures(samples),
        )
