"""Dramatiq as a peer: Redis broker, 2 worker processes, prefetch 64.

Each worker process runs ``python -m bench.peers.dramatiq_peer ...``: it builds a
``RedisBroker``, declares the actors on it and runs Dramatiq's own ``Worker``, as the
``dramatiq -p 2`` command does, without a module-level broker. The prefetch is set
through Dramatiq's documented ``dramatiq_queue_prefetch`` variable.

Actors: ``noop(payload, sent)`` records its start with the ``Recorder``; ``call(payload)``
returns ``{"ok": true}`` through the Results middleware with its Redis backend, which is
added only for the sync workload. Every Redis key lives under the run's prefix.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results import Results
from dramatiq.results.backends.redis import RedisBackend

from bench.peers.driver import WorkerProcesses
from bench.peers.recorder import Recorder

PROCESSES = 2
PREFETCH = 64
#: Threads per process: Dramatiq's default, 8; 1 thread was about half as fast here.
THREADS = 8
QUEUE = "bench"


def build_broker(
    redis_url: str, prefix: str, *, results: bool
) -> tuple[RedisBroker, RedisBackend | None]:
    broker = RedisBroker(url=redis_url, namespace=f"{prefix}:dramatiq")  # type: ignore[no-untyped-call]
    backend = None
    if results:
        backend = RedisBackend(  # type: ignore[no-untyped-call]
            url=redis_url, namespace=f"{prefix}:results", use_namespace_prefix_keys=True
        )
        broker.add_middleware(Results(backend=backend))  # type: ignore[no-untyped-call]
    return broker, backend


def declare_actors(
    broker: RedisBroker, recorder: Recorder, *, results: bool
) -> tuple[dramatiq.Actor[Any, Any], dramatiq.Actor[Any, Any]]:
    def noop(payload: dict[str, Any], sent: float) -> None:
        recorder.record(sent)

    def call(payload: dict[str, Any]) -> dict[str, bool]:
        return {"ok": True}

    options: dict[str, Any] = {"store_results": True} if results else {}
    return (
        dramatiq.actor(broker=broker, queue_name=QUEUE, max_retries=0)(noop),
        dramatiq.actor(broker=broker, queue_name=QUEUE, max_retries=0, **options)(call),
    )


class DramatiqSession:
    def __init__(self, redis_url: str, prefix: str, *, results: bool, threads: int) -> None:
        self._url = redis_url
        self._prefix = prefix
        self._results = results
        self._threads = threads
        self._broker, self._backend = build_broker(redis_url, prefix, results=results)
        self._noop, self._call = declare_actors(
            self._broker, Recorder(redis_url, prefix), results=results
        )
        self.workers = WorkerProcesses("dramatiq")

    def start_workers(self) -> None:
        command = [
            sys.executable,
            "-m",
            "bench.peers.dramatiq_peer",
            self._url,
            self._prefix,
            f"--threads={self._threads}",
        ]
        if self._results:
            command.append("--results")
        for _ in range(PROCESSES):
            self.workers.start(command, env={"dramatiq_queue_prefetch": str(PREFETCH)})

    def check(self) -> None:
        self.workers.check()

    def send(self, payload: dict[str, Any], sent: float) -> None:
        self._noop.send(payload, sent)

    def call(self, payload: dict[str, Any]) -> Any:
        message = self._call.send(payload)
        return message.get_result(backend=self._backend, block=True, timeout=30_000)

    def close(self) -> None:
        self.workers.stop()
        self._broker.close()


class DramatiqPeer:
    name = "dramatiq"
    sync_unsupported: str | None = None

    def __init__(self, redis_url: str, *, threads: int = THREADS) -> None:
        self._url = redis_url
        self.threads = threads

    def open(self, prefix: str, *, results: bool) -> DramatiqSession:
        return DramatiqSession(self._url, prefix, results=results, threads=self.threads)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A Dramatiq worker process for the benchmark.")
    parser.add_argument("redis_url")
    parser.add_argument("prefix")
    parser.add_argument("--threads", type=int, default=THREADS)
    parser.add_argument("--results", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    broker, _ = build_broker(args.redis_url, args.prefix, results=args.results)
    declare_actors(broker, Recorder(args.redis_url, args.prefix), results=args.results)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    worker = dramatiq.Worker(broker, worker_threads=args.threads)
    worker.start()
    stopping.wait()
    worker.stop(timeout=5_000)
    broker.close()


if __name__ == "__main__":
    main()
