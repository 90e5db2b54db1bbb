"""Keeping a SQLite database's ``-shm`` file when its last connection closes.

A database in WAL mode needs its wal-index, the ``-shm`` file beside it, to be opened
for writing, and SQLite makes that file (some 32 KB) when it is missing. The last
connection to close cleanly checkpoints and deletes the ``-wal`` and ``-shm`` files,
so a node stopped cleanly and started again on a disk that filled up meanwhile could
not even open its databases to serve reads. ``keeping_wal_index`` keeps the file: it
makes a second link to it while it is open, and puts the link back in its place once
the connections are closed. SQLite resets a ``-shm`` file that no connection holds
when it opens the database, as after a crash, so what the file holds does not matter;
only that its blocks are on the disk already.

SQLite's own way, ``SQLITE_FCNTL_PERSIST_WAL``, is a file control that Python's
``sqlite3`` cannot call; ``SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE`` (``setconfig``, Python
3.12 and later only) keeps the files but also skips the checkpoint on close. The link
works on every Python that Triggerfish supports, and the close still checkpoints.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("triggerfish")


@contextlib.contextmanager
def keeping_wal_index(database: str | os.PathLike[str] | None) -> Iterator[None]:
    """Close the connections of ``database`` inside this block: its ``-shm`` file is
    there again after it (unless it was missing before). A failure here is logged,
    never raised: it costs a start on a full disk, not the stop under way."""
    if database is None:
        yield
        return
    shm = Path(f"{os.fspath(database)}-shm")
    keep = shm.with_name(shm.name + ".keep")
    with contextlib.suppress(FileNotFoundError):
        keep.unlink()  # left by a stop that did not finish
    try:
        os.link(shm, keep)
    except OSError:
        yield  # no wal-index (not WAL, never opened): nothing to keep
        return
    try:
        yield
    finally:
        # Put it back only where nothing is: another process may hold the database and
        # a wal-index of its own, which must never be replaced.
        try:
            os.link(keep, shm)
        except FileExistsError:
            pass
        except OSError as error:
            log.warning("cannot keep the wal-index of %s: %s", database, error)
        with contextlib.suppress(OSError):
            keep.unlink()
