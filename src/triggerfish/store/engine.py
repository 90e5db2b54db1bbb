"""``Database``: an async SQLAlchemy engine with read and write transactions.

On SQLite it turns on WAL (readers never wait for the writer), a busy timeout and
foreign keys, and opens every write transaction with ``BEGIN IMMEDIATE``: two writers
then queue on the busy timeout instead of one failing when it upgrades a read lock.
On every backend, driver errors leave a transaction as ``AdapterError``, or
``ConflictError`` when a uniqueness rule was broken, with the driver's error as cause;
so does a server that cannot be reached (a refused or reset connection), so a store
that went away is a 503 to API callers and a retry to background tasks.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from triggerfish.errors import AdapterError, ConflictError
from triggerfish.sqlite_files import keeping_wal_index

_WRITE = "triggerfish_write"
T = TypeVar("T")


class Database:
    def __init__(
        self, url: str, *, busy_timeout: float = 10.0, echo: bool = False, vacuum: bool = True
    ) -> None:
        self.url = url
        self._vacuum = vacuum
        self._busy_timeout_ms = int(busy_timeout * 1000)
        self._echo = echo
        self._engine: AsyncEngine | None = None
        self._writer: AsyncEngine | None = None

    @property
    def safe_url(self) -> str:
        """The URL without its password, for messages."""
        try:
            return sa.make_url(self.url).render_as_string(hide_password=True)
        except sa.exc.ArgumentError:
            return "(invalid database url)"

    @property
    def busy_timeout_ms(self) -> int:
        return self._busy_timeout_ms

    @property
    def sqlite_file(self) -> str | None:
        """The SQLite database file as the driver opens it; None on another backend, in
        memory, or when the URL has options (a URI, a timeout) that only the driver reads."""
        try:
            url = sa.make_url(self.url)
        except sa.exc.ArgumentError:
            return None
        if url.get_backend_name() != "sqlite" or url.query:
            return None
        if url.database in (None, "", ":memory:") or url.database.startswith("file:"):
            return None
        return os.path.abspath(url.database)

    async def open(self) -> None:
        if self._engine is not None:
            return
        try:
            url = sa.make_url(self.url)
            folder = _sqlite_folder(url)
            if folder is not None:
                await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
            engine = create_async_engine(url, echo=self._echo)
        except (sa.exc.SQLAlchemyError, ImportError, OSError) as exc:
            raise AdapterError(f"cannot open the store at {self.safe_url}: {exc}") from exc
        if engine.dialect.name == "sqlite":
            self._prepare_sqlite(engine)
        self._engine = engine
        self._writer = engine.execution_options(**{_WRITE: True})

    async def close(self) -> None:
        engine, self._engine, self._writer = self._engine, None, None
        if engine is not None:
            # The -shm file stays: a start on a disk that filled up meanwhile opens the store.
            with keeping_wal_index(self.sqlite_file):
                await engine.dispose()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self._transaction(self._engine) as conn:
            yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        async with self._transaction(self._writer) as conn:
            yield conn

    @asynccontextmanager
    async def _transaction(self, engine: AsyncEngine | None) -> AsyncIterator[AsyncConnection]:
        if engine is None:
            raise AdapterError("the store is not started; call start() first")
        in_body = False
        try:
            async with engine.begin() as conn:
                in_body = True
                yield conn
                in_body = False
        except sa.exc.IntegrityError as exc:
            raise ConflictError(f"already exists or still referenced: {exc.orig}") from exc
        except sa.exc.SQLAlchemyError as exc:
            raise AdapterError(f"store error ({self.safe_url}): {exc}") from exc
        except OSError as exc:
            # A server that cannot be reached (refused, reset, timed out) fails the
            # driver's connect with the socket's error, which SQLAlchemy passes as it is.
            # An OSError of the caller's own code inside the transaction stays its own.
            if in_body:
                raise
            raise AdapterError(f"cannot reach the store ({self.safe_url}): {exc}") from exc

    def _prepare_sqlite(self, engine: AsyncEngine) -> None:
        busy_ms = self._busy_timeout_ms
        vacuum = self._vacuum

        @sa.event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # SQLAlchemy emits BEGIN itself (below) instead of the driver's legacy mode.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
            # Takes effect in a new file only: pruning's free pages can be given back
            # (``store/retention.py``).
            # Asked of a new file only: on an existing one it writes, which fails on a
            # full disk, and the node must start there all the same.
            # ``vacuum`` False (``sqlite_vacuum``): no pointer-map upkeep in every write.
            cursor.execute("PRAGMA page_count")
            if vacuum and cursor.fetchone()[0] == 0:
                cursor.execute("PRAGMA auto_vacuum = INCREMENTAL")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.close()

        @sa.event.listens_for(engine.sync_engine, "begin")
        def _on_begin(conn: sa.Connection) -> None:
            write = conn.get_execution_options().get(_WRITE, False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def dialect_insert(conn: AsyncConnection, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
    """An ``INSERT`` into ``table`` that can say what to do on conflict, in the dialect
    of ``conn`` (PostgreSQL's and SQLite's share ``ON CONFLICT``)."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise AdapterError(f"{table.name} needs PostgreSQL or SQLite, not {dialect}")


def _sqlite_folder(url: sa.URL) -> Path | None:
    """The folder of a SQLite database file, to create it if missing."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    if url.database.startswith("file:"):
        return None
    return Path(url.database).expanduser().parent


IN_CHUNK = 500


def in_chunks(values: Sequence[T], size: int = IN_CHUNK) -> Iterator[list[T]]:
    """``values`` in lists of exactly ``size`` for an ``IN (...)``, the last one padded
    with repeats of its last value (which ``IN`` ignores).

    SQLAlchemy writes one placeholder per value, so lists of every length are as many
    statements, and the driver keeps each prepared (over a hundred per connection):
    the statements of thousands of placeholders that the passes of a prune made grew a
    long-running node's memory (docs/benchmarks.md, the soak). Lists of one length are
    one statement.
    """
    for start in range(0, len(values), size):
        chunk = list(values[start : start + size])
        chunk.extend(chunk[-1:] * (size - len(chunk)))
        yield chunk
