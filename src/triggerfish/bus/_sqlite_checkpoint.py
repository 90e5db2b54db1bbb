"""WAL checkpoints of the SQLite bus, on a thread and connection of their own.

In WAL mode every commit appends pages to the ``-wal`` file, and a checkpoint copies
them back into the database file. SQLite's automatic checkpoint runs inside the
commit that crosses its threshold (1000 pages), on the committing connection: on the
bus that was the writer thread, so every few hundred commits one publish waited some
milliseconds for a thousand pages to be copied, and the fetches it would have served
with it. The bus turns that off on the writer (``wal_autocheckpoint = 0``) and runs
``Checkpointer`` instead:

- the writer's connection calls ``committed()`` after each commit (on the writer
  thread, or on the event loop for a batch it ran inline); every ``CHECKPOINT_EVERY``
  commits or ``CHECKPOINT_ROWS`` rows written that wakes the checkpointer's thread,
  which runs a PASSIVE checkpoint on its own connection. A passive checkpoint never
  waits for and never blocks the writer: both go on at once, and the writer's commits
  stay as durable as before (a commit is in the WAL before it returns; a checkpoint
  only moves committed pages);
- the WAL starts again from its beginning when the writer begins a transaction after
  a checkpoint that copied all of it. Under writes without a pause, a checkpoint
  beside them never quite catches up, so the WAL could keep growing: once it holds
  ``WAL_LIMIT`` frames or more, ``restart_wanted`` asks the writer to run one
  passive checkpoint itself between two transactions on its thread (``committed``;
  writes that never pause go to the thread, past the event loop's share). It copies only
  what came after the checkpointer's last pass, and lets the next transaction start
  the WAL again, which keeps the file bounded. Meanwhile the checkpointer waits for it
  (up to ``RESTART_TURN``): two checkpoints never run at once, and on a loaded machine
  the writer's kept finding the checkpointer's long passes under way, so the WAL grew
  by megabytes before it started again. A writer that found one under way tries again
  after its next commit.

A failed checkpoint is logged and tried again at the next wake-up: it costs disk
space for a while, never an event.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger("triggerfish.bus")

#: Commits between two checkpoints (a commit of a few events writes a few pages)...
CHECKPOINT_EVERY = 100
#: ... or rows written, whichever comes first (big batches write a page every few rows).
CHECKPOINT_ROWS = 2000
#: WAL frames (pages) past which the writer checkpoints once itself, so that the WAL
#: starts again (8 MiB with SQLite's default page size of 4 KiB).
WAL_LIMIT = 2048
#: Seconds the checkpointer leaves the writer to checkpoint itself, once it asked it to,
#: before it goes on with its own passes (commits that run on the event loop never do).
RESTART_TURN = 0.5


class Checkpointer:
    def __init__(
        self, path: Path, *, name: str, every: int | None = None, limit: int | None = None
    ) -> None:
        self._path = path
        self._every = every or CHECKPOINT_EVERY
        self._rows = CHECKPOINT_ROWS
        self._limit = limit or WAL_LIMIT
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._wake = threading.Event()
        self._stopping = False
        # Commits since the last wake-up, and the connection's rows written then.
        self._since = 0
        self._rows_then = 0
        #: Set by the checkpointer when the WAL holds ``limit`` frames or more; cleared
        #: by the writer once it checkpointed itself.
        self.restart_wanted = False
        self._restarted = threading.Event()
        #: Checkpoints run so far, here and on the writer; for tests and benchmarks.
        self.passes = 0
        #: Frames in the WAL at the last checkpoint (0 right after it started again).
        self.wal_frames = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (after the pass under way, if any)."""
        if not self._thread.is_alive():
            return
        self._stopping = True
        self._wake.set()
        self._restarted.set()
        self._thread.join()

    def committed(self, connection: sqlite3.Connection, inline: bool = False) -> None:
        """After each commit of the writer's connection: wake the checkpointer now and
        then, and checkpoint here when the WAL must start again, on the writer thread
        only (``inline``: the commit ran on the event loop, which a checkpoint of
        megabytes would hold up; writes that never pause soon go to the thread)."""
        if self.restart_wanted and not inline and self._checkpoint(connection) is not None:
            self.restart_wanted = False
            self._restarted.set()
        self._since += 1
        rows = connection.total_changes
        if self._since >= self._every or rows - self._rows_then >= self._rows:
            self._since = 0
            self._rows_then = rows
            self._wake.set()

    def _checkpoint(self, connection: sqlite3.Connection) -> int | None:
        """A passive checkpoint on ``connection``, outside any transaction: the frames
        the WAL held, or None when it did not run."""
        try:
            busy, frames, _ = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as error:
            log.warning("checkpoint of the bus at %s failed: %s", self._path, error)
            return None
        if busy:
            return None  # another checkpoint was under way: it does the work
        self.passes += 1
        self.wal_frames = frames
        return int(frames)

    def _main(self) -> None:
        try:
            connection = sqlite3.connect(self._path, isolation_level=None)
        except sqlite3.Error as error:
            log.warning("cannot open the bus at %s for checkpoints: %s", self._path, error)
            return
        try:
            connection.execute("PRAGMA busy_timeout = 10000")
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._stopping:
                    return
                frames = self._checkpoint(connection)
                # Only this thread's passes ask for the writer's: one that the writer
                # ran itself could not restart the WAL only while a reader keeps an
                # old snapshot, and asking again would cost every commit a checkpoint.
                if frames is not None and frames >= self._limit:
                    self._restarted.clear()
                    self.restart_wanted = True
                    self._restarted.wait(RESTART_TURN)
        finally:
            connection.close()
