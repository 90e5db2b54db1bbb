"""When a peer's tasks ran, recorded inside its workers without slowing them down.

A task calls ``Recorder.record(sent)`` as its first statement. The recorder keeps the
figures in memory (a lock and a few additions per task) and a daemon thread flushes
them to Redis every ``FLUSH_SECONDS``, so no task waits on a network round trip. The
timestamps are taken in the task itself, so how often the thread flushes changes when
the harness notices the end, never what it measures. Keys, under the run's prefix:

    {prefix}:done          tasks handled (INCRBY)
    {prefix}:first:{pid}   earliest handler start in that process (unix seconds)
    {prefix}:last:{pid}    latest handler end in that process
    {prefix}:lat           "sent start" pairs, for messages that carry a send time > 0

``Tally`` is the harness's side: it reads the same keys.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

import redis

FLUSH_SECONDS = 0.02


class Recorder:
    def __init__(self, redis_url: str, prefix: str) -> None:
        self._url = redis_url
        self._prefix = prefix
        self._pid = -1  # forces set-up in the process that records first (after a fork)
        self._lock = threading.Lock()
        self._pending = 0
        self._first = 0.0
        self._last = 0.0
        self._pairs: list[str] = []

    def record(self, sent: float) -> None:
        start = time.time()
        if self._pid != os.getpid():
            self._set_up()
        with self._lock:
            if not self._first:
                self._first = start
            if sent > 0:
                self._pairs.append(f"{sent!r} {start!r}")
            self._pending += 1
            self._last = time.time()

    def _set_up(self) -> None:
        # A prefork child inherits the parent's object but not its thread: start afresh.
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._pending, self._first, self._last, self._pairs = 0, 0.0, 0.0, []
        client = redis.Redis.from_url(self._url)
        threading.Thread(target=self._flush_forever, args=(client,), daemon=True).start()

    def _flush_forever(self, client: redis.Redis) -> None:
        while True:
            time.sleep(FLUSH_SECONDS)
            with self._lock:
                pending, first, last, pairs = self._pending, self._first, self._last, self._pairs
                self._pending, self._pairs = 0, []
            if not pending:
                continue
            pipe = client.pipeline(transaction=False)
            if pairs:
                pipe.rpush(f"{self._prefix}:lat", *pairs)
            pipe.set(f"{self._prefix}:first:{self._pid}", repr(first))
            pipe.set(f"{self._prefix}:last:{self._pid}", repr(last))
            # The count goes last: once it is complete, the timestamps are in place.
            pipe.incrby(f"{self._prefix}:done", pending)
            pipe.execute()


class Tally:
    """The harness's reading of what the recorders wrote under ``prefix``."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix

    def done(self) -> int:
        value = self._client.get(f"{self._prefix}:done")
        return int(value) if value else 0

    def wait_for(
        self, count: int, *, timeout: float, check: Callable[[], None] | None = None
    ) -> None:
        """Block until ``count`` tasks are recorded; ``TimeoutError`` past ``timeout``.

        ``check`` runs on every poll and may raise (a worker that died, say).
        """
        deadline = time.monotonic() + timeout
        while (done := self.done()) < count:
            if check is not None:
                check()
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {done} of {count} tasks were handled in {timeout:.0f} s")
            time.sleep(0.02)

    def span(self) -> tuple[float, float]:
        """(earliest handler start, latest handler end) over all worker processes."""
        firsts = self._floats(f"{self._prefix}:first:*")
        lasts = self._floats(f"{self._prefix}:last:*")
        if not firsts or not lasts:
            raise RuntimeError("no worker recorded a task")
        return min(firsts), max(lasts)

    def latencies(self) -> list[float]:
        """Seconds from send to handler start, one per message that carried a send time."""
        out = []
        for raw in self._client.lrange(f"{self._prefix}:lat", 0, -1):
            sent, start = raw.split()
            out.append(float(start) - float(sent))
        return out

    def _floats(self, pattern: str) -> list[float]:
        keys = list(self._client.scan_iter(match=pattern, count=1000))
        return [float(v) for v in self._client.mget(keys) if v is not None] if keys else []
