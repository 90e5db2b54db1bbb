"""``SqliteRecordWriter``: invocation records written to an SQLite file by a connection
of their own, on a thread of their own, one hand-off of the event loop per batch.

Through the pooled SQLAlchemy connection a batch took eight trips between the event
loop and the driver's thread (cursor, ``BEGIN IMMEDIATE``, cursor, ``INSERT``, two
cursor closes, ``COMMIT`` and the pool's rollback when the connection came back), each
one a wake-up of the loop: about 400 microseconds of its time per batch, whatever the
batch's size. Here the whole transaction is one job on the writer's thread, and
SQLite runs it with the interpreter's lock released, so the event loop pays for
encoding the batch (in C) and for one hand-off.

The connection has the settings of ``engine.Database``'s (WAL, busy timeout, foreign
keys) and opens every transaction with ``BEGIN IMMEDIATE``; the store's other writes
queue behind it on the busy timeout as they queue behind each other.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from triggerfish.errors import AdapterError, ConflictError
from triggerfish.ids import new_id
from triggerfish.store import schema as t
from triggerfish.store.records import InvocationRecord

_T = TypeVar("_T")
_INSERT_BATCH = t.invocation_batch_insert()
_INSERT_ROWS = t.invocation_insert_sqlite()


def sqlite_insert(
    records: Sequence[InvocationRecord], document: bytes | None
) -> tuple[str, tuple[bytes, str] | list[tuple[Any, ...]]]:
    """The statement that stores ``records`` on SQLite and its parameters (a list: one
    row each, for ``executemany``): their batch ``document``
    (``schema.invocation_batch_document``) with a new ``recorded_id`` each, or, without
    one, their rows. Call it inside the write transaction: the ids then increase in the
    order the batches commit."""
    recorded_ids = new_id.many(len(records))
    if document is not None:
        return _INSERT_BATCH, (document, "".join(recorded_ids))
    rows = [
        t.invocation_values(record, record.recorded_id or recorded_id)
        for record, recorded_id in zip(records, recorded_ids, strict=True)
    ]
    return _INSERT_ROWS, rows


class SqliteRecordWriter:
    """Writes batches of invocation records to the SQLite file ``path``, in order."""

    def __init__(self, path: str, *, busy_timeout_ms: int) -> None:
        self.path = path
        self._busy_timeout_ms = busy_timeout_ms
        # One thread: batches commit in the order they were handed over.
        self._thread = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="triggerfish-records"
        )
        self._connection: sqlite3.Connection | None = None

    async def write(self, records: Sequence[InvocationRecord]) -> None:
        """Store ``records`` in one transaction; each gets its ``recorded_id`` once the
        transaction holds the write lock."""
        # Encoded here, in C: on the writer's thread it would hold the interpreter lock too.
        await self._run(self._insert_now, records, t.invocation_batch_document(records))

    async def close(self) -> None:
        """Close the connection once the batches handed over are written."""
        try:
            await self._run(self._close_now)
        finally:
            self._thread.shutdown(wait=False)

    async def _run(self, job: Callable[..., _T], *args: Any) -> _T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._thread, job, *args)
        except sqlite3.IntegrityError as exc:
            raise ConflictError(f"already exists or still referenced: {exc}") from exc
        except sqlite3.Error as exc:
            raise AdapterError(f"store error (sqlite:///{self.path}): {exc}") from exc

    # -- on the writer's thread ------------------------------------------------------

    def _insert_now(self, records: Sequence[InvocationRecord], document: bytes | None) -> None:
        with self._transaction() as conn:
            sql, parameters = sqlite_insert(records, document)
            if isinstance(parameters, list):
                conn.executemany(sql, parameters)
            else:
                conn.execute(sql, parameters)

    def _transaction(self) -> _Transaction:
        if self._connection is None:
            self._connection = self._connect()
        return _Transaction(self._connection)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
        except BaseException:
            conn.close()
            raise
        return conn

    def _close_now(self) -> None:
        conn, self._connection = self._connection, None
        if conn is not None:
            conn.close()


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` when the block fails."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self._conn.execute("BEGIN IMMEDIATE")
        return self._conn

    def __exit__(self, exc_type: object, exc: object, traceback: object) -> None:
        if exc_type is None:
            try:
                self._conn.execute("COMMIT")
                return
            except BaseException:
                self._rollback()
                raise
        self._rollback()

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")
