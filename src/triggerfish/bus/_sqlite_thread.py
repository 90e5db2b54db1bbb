"""One SQLite connection on one thread, with group commit, bridged to asyncio.

``SqliteThread.run(job)`` queues ``job(connection)`` and returns an awaitable of its
result. The thread takes every job that is queued when it wakes (up to ``max_batch``)
and runs them all in ONE transaction, so fifty concurrent publishers of one event each
cost one commit, not fifty. Each job that shares its transaction runs inside its own
savepoint: a job that raises is rolled back alone and its caller gets the exception;
the others still commit (a job alone in its transaction needs no savepoint). A
result is handed back only after the commit that holds it has succeeded; ``on_commit``
then runs, after the results are on their way (the bus's checkpoints).

With ``inline=True`` the jobs that the event loop which started the thread queues
while the thread is idle are run by that loop itself instead: the jobs queued during
one pass of the loop are gathered and run as one transaction in a callback of the
next, under the lock that the thread takes for each of its batches. That saves the
two thread switches of a round trip (the thread waking up, then the loop), which
cost a tenth of a millisecond each when nothing else runs and far more when the
machine is busy, on every publish, lease and ack of a quiet bus. Whenever the thread
is busy or has jobs waiting, jobs go to it as before, and so do they once the batches
run inline took ``INLINE_SHARE`` of the loop's time in the current ``INLINE_WINDOW``:
a busy bus commits beside the loop rather than on it (a source that reads a broker on
the loop while its batches commit on the thread took 2,600 messages/s from RabbitMQ,
and 1,800 when every commit ran on the loop). The bus asks for it with ``synchronous=NORMAL``
only, where a commit is a write to the WAL and no wait for the disk.

Errors of the driver reach callers as ``AdapterError`` with the ``sqlite3`` error as the
cause; errors of Triggerfish raised by a job (``NotFoundError`` ...) pass through as is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from triggerfish.errors import AdapterError

T = TypeVar("T")

log = logging.getLogger("triggerfish.bus")

Job = Callable[[sqlite3.Connection], T]

#: The share of the event loop's time that batches run inline may take, measured over
#: windows of ``INLINE_WINDOW`` seconds: past it, batches go to the thread for the rest
#: of the window, so that a busy bus commits beside the loop rather than on it.
INLINE_SHARE = 0.2
INLINE_WINDOW = 0.1


class _Task:
    __slots__ = ("future", "job", "loop")

    def __init__(
        self, job: Job[Any], loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any]
    ) -> None:
        self.job = job
        self.loop = loop
        self.future = future


# (future, result, error) for each finished task, handed to its loop in one call.
_Outcome = tuple["asyncio.Future[Any]", Any, BaseException | None]


def _settle(outcomes: list[_Outcome]) -> None:
    for future, result, error in outcomes:
        if future.cancelled():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)


def _adapter_error(error: sqlite3.Error, path: Path) -> AdapterError:
    adapted = AdapterError(f"SQLite bus at {path} failed: {error}")
    adapted.__cause__ = error
    return adapted


class SqliteThread:
    """A dedicated thread that owns one connection and runs queued jobs in batches.

    ``write=True`` opens each batch with ``BEGIN IMMEDIATE`` (the writer); otherwise with
    a plain ``BEGIN``, which in WAL mode gives every batch one consistent snapshot.
    """

    def __init__(
        self,
        path: Path,
        *,
        name: str,
        write: bool,
        setup: Callable[[sqlite3.Connection], None],
        on_commit: Callable[[sqlite3.Connection, bool], None] | None = None,
        inline: bool = False,
        max_batch: int = 256,
    ) -> None:
        """``on_commit(connection, inline)`` runs after each commit, once its results
        are handed back, wherever the batch ran (``inline``: on the home loop)."""
        self._path = path
        self._write = write
        self._setup = setup
        self._on_commit = on_commit
        self._inline = inline
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Task | None] = queue.SimpleQueue()  # None: stop
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._ready = threading.Event()
        self._open_error: BaseException | None = None
        self._accepting = False
        # Held while a batch runs, by the thread or by the home loop (``inline``).
        self._lock = threading.Lock()
        # Jobs given to the thread and not finished yet; while there are any, the home
        # loop queues its jobs behind them rather than run them first.
        self._outstanding = 0
        self._counting = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._home: asyncio.AbstractEventLoop | None = None
        self._gathered: list[_Task] = []  # the home loop's jobs of this pass
        # Time the home loop spent running batches in the current window.
        self._window_start = 0.0
        self._inline_spent = 0.0
        # Futures that jobs of the running batch resolve once it commits.
        self._after: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[Any], Any]] = []
        #: Number of transactions committed; tells tests and benchmarks how well jobs merge.
        self.commits = 0

    async def start(self) -> None:
        self._thread.start()
        await asyncio.to_thread(self._ready.wait)
        if self._open_error is not None:
            raise self._open_error
        if self._inline:
            self._home = asyncio.get_running_loop()
        self._accepting = True

    async def stop(self) -> None:
        if not self._thread.is_alive():
            return
        self._queue_gathered()  # they run before the thread ends
        self._accepting = False
        self._queue.put(None)
        await asyncio.to_thread(self._thread.join)

    def after_commit(
        self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], value: Any
    ) -> None:
        """From inside a job: resolve ``future`` with ``value`` once the job's work is
        committed, or with None if it is rolled back instead."""
        self._after.append((loop, future, value))

    def run(self, job: Job[T], *, heavy: bool = False) -> asyncio.Future[T]:
        """``heavy``: a job that may take long (retention, deleting a topic): always
        run on the thread, never holding up the event loop."""
        if not self._accepting:
            raise AdapterError(f"SQLite bus at {self._path} is not running: call start() first")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        task = _Task(job, loop, future)
        if loop is not self._home:
            self._give([task])
        elif heavy:
            self._queue_gathered()  # the jobs before it go first
            self._give([task])
        else:
            if not self._gathered:
                loop.call_soon(self._run_gathered)
            self._gathered.append(task)
        return future

    def _give(self, tasks: list[_Task]) -> None:
        """Queue ``tasks`` for the thread."""
        with self._counting:
            self._outstanding += len(tasks)
        for task in tasks:
            self._queue.put(task)

    # -- on the home loop (inline) -------------------------------------------------------

    def _run_gathered(self) -> None:
        """The jobs of the last pass of the loop: run here as one batch while the thread
        is idle, else queued for it (behind what it has, so the order holds)."""
        batch, self._gathered = self._gathered, []
        if not batch:
            return  # stop() gave them to the thread
        connection = self._connection
        began = time.perf_counter()
        if began - self._window_start >= INLINE_WINDOW:
            self._window_start = began
            self._inline_spent = 0.0
        if (
            connection is None
            or self._outstanding
            or self._inline_spent >= INLINE_SHARE * INLINE_WINDOW
            or not self._lock.acquire(False)
        ):
            self._give(batch)
            return
        try:
            self._run_batch(connection, batch, inline=True)
        finally:
            self._lock.release()
            self._inline_spent += time.perf_counter() - began

    def _queue_gathered(self) -> None:
        batch, self._gathered = self._gathered, []
        self._give(batch)

    # -- on the thread (or the home loop, holding the lock) ------------------------------

    def _main(self) -> None:
        connection: sqlite3.Connection | None = None
        try:
            # The home loop runs batches on it too, never at the same time (``_lock``).
            connection = sqlite3.connect(
                self._path, isolation_level=None, check_same_thread=not self._inline
            )
            self._setup(connection)
        except BaseException as error:
            if connection is not None:
                connection.close()
            self._open_error = (
                _adapter_error(error, self._path) if isinstance(error, sqlite3.Error) else error
            )
            self._ready.set()
            return
        self._connection = connection
        self._ready.set()
        try:
            stopping = False
            while not stopping:
                first = self._queue.get()
                if first is None:
                    break
                batch = [first]
                while len(batch) < self._max_batch:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        stopping = True
                        break
                    batch.append(more)
                with self._lock:
                    self._run_batch(connection, batch)
                with self._counting:
                    self._outstanding -= len(batch)
        finally:
            with self._lock:
                self._connection = None
                connection.close()

    def _run_batch(
        self, connection: sqlite3.Connection, batch: list[_Task], *, inline: bool = False
    ) -> None:
        results: list[tuple[Any, BaseException | None]] = []
        self._after = []
        try:
            connection.execute("BEGIN IMMEDIATE" if self._write else "BEGIN")
            if len(batch) == 1 and self._write:
                # Alone in its transaction, a job needs no savepoint: if it fails, the
                # whole transaction is rolled back instead (two statements fewer).
                result = self._run_alone(connection, batch[0])
                results.append(result)
                if result[1] is not None:
                    connection.execute("ROLLBACK")
                    self._undo_after(0)
                    self._hand_back(batch, results, inline)
                    return
            else:
                for task in batch:
                    results.append(self._run_one(connection, task))
            connection.execute("COMMIT")
            self.commits += 1
        except sqlite3.Error as error:
            if connection.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    connection.execute("ROLLBACK")
            failure = _adapter_error(error, self._path)
            results = [(None, failure)] * len(batch)
            self._undo_after(0)
            self._hand_back(batch, results, inline)
            return
        self._hand_back(batch, results, inline)
        if self._on_commit is not None:
            # After the hand-back: the callers resume before the hook's work.
            try:
                self._on_commit(connection, inline)
            except Exception:
                log.exception("SQLite bus at %s: after-commit work failed", self._path)

    def _undo_after(self, start: int) -> None:
        """The work of the jobs that asked from ``start`` on was rolled back."""
        after = self._after
        after[start:] = [(loop, future, None) for loop, future, _ in after[start:]]

    def _hand_back(
        self, batch: list[_Task], results: list[tuple[Any, BaseException | None]], inline: bool
    ) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
        # Waiting fetches served by this commit first: their consumers dispatch before
        # the publishers' replies are written, which shortens publish-to-handler time.
        after, self._after = self._after, []
        for loop, future, value in after:
            by_loop.setdefault(loop, []).append((future, value, None))
        for task, (result, problem) in zip(batch, results, strict=True):
            by_loop.setdefault(task.loop, []).append((task.future, result, problem))
        for loop, outcomes in by_loop.items():
            if inline and loop is self._home:
                _settle(outcomes)  # on that loop already
                continue
            # RuntimeError: the caller's loop is closed, nobody is waiting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, outcomes)

    def _run_alone(
        self, connection: sqlite3.Connection, task: _Task
    ) -> tuple[Any, BaseException | None]:
        try:
            return task.job(connection), None
        except sqlite3.Error as error:
            return None, _adapter_error(error, self._path)
        except Exception as error:
            return None, error

    def _run_one(
        self, connection: sqlite3.Connection, task: _Task
    ) -> tuple[Any, BaseException | None]:
        if not self._write:
            return self._run_alone(connection, task)
        connection.execute("SAVEPOINT job")
        mark = len(self._after)
        try:
            result = task.job(connection)
        except Exception as error:
            connection.execute("ROLLBACK TO job")
            connection.execute("RELEASE job")
            self._undo_after(mark)
            if isinstance(error, sqlite3.Error):
                return None, _adapter_error(error, self._path)
            return None, error
        connection.execute("RELEASE job")
        return result, None
