"""The three workloads, run the same way against any queue-based peer.

A peer opens a ``PeerSession`` under a fresh Redis key prefix: it knows how to start
its workers, enqueue one no-op task, and call one synchronously. Everything timed is
timed here, by the same code for every peer, and every key of the run is deleted at
the end. ``WorkerProcesses`` starts a peer's worker commands in their own process
group and stops them with SIGTERM (SIGKILL after a grace period).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import redis

from bench.peers.recorder import Tally
from bench.workload import WARMUP_EVENTS, Plan, Result, latency_figures, make_payload, paced

SYNC_WARMUP_CALLS = 20


class PeerSession(Protocol):
    def start_workers(self) -> None: ...

    def check(self) -> None:
        """Raise if a worker process has died."""

    def send(self, payload: dict[str, Any], sent: float) -> None:
        """Enqueue the no-op task; ``sent`` > 0 is carried for the latency workload."""

    def call(self, payload: dict[str, Any]) -> Any:
        """Run the no-op task and wait for its result (thread-safe)."""

    def close(self) -> None: ...


class Peer(Protocol):
    name: str
    #: Why the sync workload does not apply to this peer, or ``None`` when it does.
    sync_unsupported: str | None

    def open(self, prefix: str, *, results: bool) -> PeerSession: ...


class WorkerProcesses:
    def __init__(self, name: str) -> None:
        self._name = name
        self._procs: list[subprocess.Popen[bytes]] = []
        self._logdir = Path(tempfile.mkdtemp(prefix=f"tfbench-{name}-"))

    def start(self, command: Sequence[str], env: dict[str, str] | None = None) -> None:
        log = (self._logdir / f"worker-{len(self._procs)}.log").open("wb")
        proc = subprocess.Popen(
            list(command),
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        log.close()
        self._procs.append(proc)

    def pids(self) -> list[int]:
        return [proc.pid for proc in self._procs]

    def check(self) -> None:
        for i, proc in enumerate(self._procs):
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{self._name} worker exited with {proc.returncode}: {self.log_tail(i)}"
                )

    def log_tail(self, i: int, lines: int = 15) -> str:
        text = (self._logdir / f"worker-{i}.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace: float = 10.0) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in self._procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for proc in self._procs:
            # Prefork children may outlive a parent that was killed: end the whole group.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        self._procs.clear()
        shutil.rmtree(self._logdir, ignore_errors=True)


def new_prefix(peer: str, workload: str) -> str:
    return f"tfbench:{peer}:{workload}:{uuid.uuid4().hex[:8]}"


def purge(client: redis.Redis, prefix: str) -> None:
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start : start + 500])


class PeerDriver:
    """Runs the workloads of ``plan`` against ``peer`` with Redis at ``redis_url``."""

    def __init__(self, peer: Peer, redis_url: str, plan: Plan) -> None:
        self._peer = peer
        self._client = redis.Redis.from_url(redis_url, decode_responses=True)
        self._plan = plan

    def throughput(self) -> Result:
        n = self._plan.throughput_events
        prefix = new_prefix(self._peer.name, "throughput")
        session = self._peer.open(prefix, results=False)
        try:
            began = time.perf_counter()
            for i in range(n):
                session.send(make_payload(i), 0.0)
            publish_s = time.perf_counter() - began
            launched = time.time()
            session.start_workers()
            tally = Tally(self._client, prefix)
            tally.wait_for(n, timeout=self._plan.drain_timeout(), check=session.check)
            first, last = tally.span()
            return Result.ok(
                events_per_s=n / (last - first),
                seconds=last - first,
                events_per_s_with_start=n / (last - launched),
                events=float(n),
                publish_per_s=n / publish_s,
            )
        finally:
            session.close()
            purge(self._client, prefix)

    def latency(self) -> Result:
        n = self._plan.latency_events
        prefix = new_prefix(self._peer.name, "latency")
        session = self._peer.open(prefix, results=False)
        try:
            session.start_workers()
            tally = Tally(self._client, prefix)
            for i in range(WARMUP_EVENTS):
                session.send(make_payload(i), 0.0)
            tally.wait_for(WARMUP_EVENTS, timeout=60, check=session.check)
            for i in paced(self._plan.latency_rate, n):
                session.send(make_payload(i), time.time())
            tally.wait_for(WARMUP_EVENTS + n, timeout=60, check=session.check)
            return Result.ok(**latency_figures(tally.latencies()))
        finally:
            session.close()
            purge(self._client, prefix)

    def sync(self) -> Result:
        if self._peer.sync_unsupported:
            return Result.not_applicable(self._peer.sync_unsupported)
        prefix = new_prefix(self._peer.name, "sync")
        session = self._peer.open(prefix, results=True)
        try:
            session.start_workers()
            for i in range(SYNC_WARMUP_CALLS):
                session.call(make_payload(i))
            return run_sync_clients(session, self._plan)
        finally:
            session.close()
            purge(self._client, prefix)


def run_sync_clients(session: PeerSession, plan: Plan) -> Result:
    """``plan.sync_clients`` threads call in a loop for ``plan.sync_seconds``."""
    samples: list[list[float]] = [[] for _ in range(plan.sync_clients)]
    errors: list[str] = []
    gate = threading.Barrier(plan.sync_clients + 1)
    deadline = 0.0

    def client(mine: list[float]) -> None:
        payload = make_payload(len(mine))
        gate.wait()
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            try:
                session.call(payload)
            except Exception as exc:  # counted and reported, the run goes on
                errors.append(f"{type(exc).__name__}: {exc}")
                continue
            mine.append(time.perf_counter() - began)

    threads = [threading.Thread(target=client, args=(s,), daemon=True) for s in samples]
    for t in threads:
        t.start()
    began = time.perf_counter()
    deadline = began + plan.sync_seconds
    gate.wait()
    for t in threads:
        t.join(plan.sync_seconds + 60)
    elapsed = time.perf_counter() - began
    latencies = [x for s in samples for x in s]
    if not latencies:
        return Result.failed(f"no call succeeded; first error: {errors[:1]}")
    return Result.ok(
        requests_per_s=len(latencies) / elapsed,
        requests=float(len(latencies)),
        errors=float(len(errors)),
        **latency_figures(latencies),
    )
