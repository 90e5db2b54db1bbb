"""Celery as a peer: Redis broker, prefork pool of 2 processes.

The worker runs as ``python -m bench.peers.celery_peer ...``, which builds the app with
``build_app`` and hands it to Celery's own worker (prefork children fork from it and so
know the tasks). The harness enqueues by task name, so it never imports a task.

Two tasks: ``bench.noop(payload, sent)`` records its start with the ``Recorder`` (the
throughput and latency workloads); ``bench.call(payload)`` returns ``{"ok": true}``
through the Redis result backend (the sync workload, the only one that has a backend).
Every Redis key lives under the run's prefix (kombu's ``global_keyprefix``).
"""

from __future__ import annotations

import argparse
import sys
import threading
from typing import Any

from celery import Celery  # type: ignore[import-untyped]

from bench.peers.driver import WorkerProcesses
from bench.peers.recorder import Recorder

CONCURRENCY = 2
#: Messages each pool process may hold; 4 is Celery's default, and larger values did not
#: help on 2 cores (see docs/benchmarks.md).
PREFETCH_MULTIPLIER = 4


def build_app(redis_url: str, prefix: str, *, results: bool) -> Celery:
    app = Celery(
        "tfbench",
        broker=redis_url,
        backend=redis_url if results else None,
        set_as_current=False,
    )
    app.conf.update(
        broker_transport_options={"global_keyprefix": f"{prefix}:"},
        result_backend_transport_options={"global_keyprefix": f"{prefix}:"},
        result_expires=600,
        task_default_queue="bench",
        task_ignore_result=not results,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        worker_prefetch_multiplier=PREFETCH_MULTIPLIER,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
    )
    recorder = Recorder(redis_url, prefix)

    @app.task(name="bench.noop")  # type: ignore[untyped-decorator]
    def noop(payload: dict[str, Any], sent: float) -> None:
        recorder.record(sent)

    @app.task(name="bench.call")  # type: ignore[untyped-decorator]
    def call(payload: dict[str, Any]) -> dict[str, bool]:
        return {"ok": True}

    return app


class CelerySession:
    def __init__(self, redis_url: str, prefix: str, *, results: bool) -> None:
        self._url = redis_url
        self._prefix = prefix
        self._results = results
        self._app = build_app(redis_url, prefix, results=results)
        self.workers = WorkerProcesses("celery")
        self._local = threading.local()
        self._callers: list[Celery] = []

    def start_workers(self) -> None:
        command = [sys.executable, "-m", "bench.peers.celery_peer", self._url, self._prefix]
        if self._results:
            command.append("--results")
        self.workers.start(command)

    def check(self) -> None:
        self.workers.check()

    def send(self, payload: dict[str, Any], sent: float) -> None:
        self._app.send_task("bench.noop", args=(payload, sent))

    def call(self, payload: dict[str, Any]) -> Any:
        # The Redis result backend's consumer is not safe to share between threads, so
        # each client thread has its own app (connections), as separate clients would.
        app = getattr(self._local, "app", None)
        if app is None:
            app = self._local.app = build_app(self._url, self._prefix, results=True)
            self._callers.append(app)
        return app.send_task("bench.call", args=(payload,)).get(timeout=30)

    def close(self) -> None:
        self.workers.stop()
        for app in [self._app, *self._callers]:
            app.close()


class CeleryPeer:
    name = "celery"
    sync_unsupported: str | None = None

    def __init__(self, redis_url: str) -> None:
        self._url = redis_url

    def open(self, prefix: str, *, results: bool) -> CelerySession:
        return CelerySession(self._url, prefix, results=results)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A Celery worker for the benchmark.")
    parser.add_argument("redis_url")
    parser.add_argument("prefix")
    parser.add_argument("--results", action="store_true")
    args = parser.parse_args(argv)
    app = build_app(args.redis_url, args.prefix, results=args.results)
    app.worker_main(
        [
            "worker",
            "--pool=prefork",
            f"--concurrency={CONCURRENCY}",
            "--loglevel=WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
    )


if __name__ == "__main__":
    main()
