"""PostgreSQL sources, with asyncpg: LISTEN/NOTIFY channels and a transactional outbox.

``postgres`` listens on channels. PostgreSQL delivers a notification only to sessions
listening when it is sent: what is notified while Triggerfish is not connected, or in
flight when it stops, is lost. At most once across restarts.

``outbox`` reads rows of a table in id order, and marks them delivered in the same
transaction that read them, after their events were committed to the trigger's topic:

    SELECT ... WHERE <delivered> IS NULL ORDER BY <id> LIMIT n FOR UPDATE SKIP LOCKED
    -> publish to the bus (committed) -> UPDATE ... SET <delivered> = now() -> COMMIT

A crash before the final commit leaves the rows undelivered, to be read again; their
event ids (``<table>-<id>``) make the second publish a duplicate that the bus stores
once. So nothing is lost across restarts. ``SKIP LOCKED`` lets several nodes share a
table. The source polls every ``poll_interval`` seconds, and wakes at once on a NOTIFY
to ``channel`` when one is given (a trigger on the table can send it).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Mapping
from typing import Any

from pydantic import Field, field_validator

from triggerfish.errors import ConfigError
from triggerfish.sources.brokers.base import BrokerKind, BrokerOptions, BrokerSource, require, take
from triggerfish.sources.brokers.convert import Message

SCHEMES = ("postgres", "postgresql")
_CLOSED = object()
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _driver() -> Any:
    return require("asyncpg")


def _payload(value: Any) -> bytes:
    if value is None:
        return b""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return str(value).encode("utf-8")


def quote_identifier(name: str) -> str:
    """``name`` (``table`` or ``schema.table``) quoted for SQL."""
    return ".".join(f'"{part}"' for part in name.split("."))


class PostgresNotifyOptions(BrokerOptions):
    channel: list[str] = Field(min_length=1)

    _lists = field_validator("channel", mode="before")(_as_list)


class PostgresNotifySource(BrokerSource[PostgresNotifyOptions]):
    kind = "postgres"
    default_type = "postgres.notification"

    async def consume(self) -> None:
        asyncpg = _driver()
        inbox: asyncio.Queue[Any] = asyncio.Queue()

        def notified(_conn: Any, _pid: int, channel: str, payload: str) -> None:
            inbox.put_nowait((channel, payload))

        conn = await asyncpg.connect(self.url, timeout=10)
        conn.add_termination_listener(lambda _conn: inbox.put_nowait(_CLOSED))
        try:
            for channel in self.options.channel:
                await conn.add_listener(channel, notified)
            self.connected()
            while True:
                try:
                    batch = await asyncio.wait_for(take(inbox, self.options.batch), 5.0)
                except TimeoutError:
                    await conn.execute("SELECT 1")  # notice a dead server
                    continue
                items = [item for item in batch if item is not _CLOSED]
                if items:
                    await self.commit([Message(payload=_payload(p), subject=c) for c, p in items])
                if len(items) < len(batch):
                    raise ConnectionError("the PostgreSQL connection closed")
        finally:
            # terminate(), not close(): it cannot be interrupted by the stop that
            # cancels this task, so no connection is ever left open.
            with contextlib.suppress(Exception):
                conn.terminate()


class PostgresNotifyKind(BrokerKind[PostgresNotifyOptions]):
    name = "postgres"
    schemes = SCHEMES
    options_model = PostgresNotifyOptions
    source_class = PostgresNotifySource

    def one_per_cluster(self, options: Mapping[str, Any]) -> bool:
        """Every listening session gets each notification: one node listens."""
        return True


class PostgresOutboxOptions(BrokerOptions):
    table: str = Field(min_length=1)  # "outbox" or "schema.outbox"
    id_column: str = "id"
    payload_column: str = "payload"
    delivered_column: str = "delivered_at"  # a nullable timestamp
    type_column: str | None = None  # the events' type, per row
    subject_column: str | None = None  # the events' subject, per row (default: the table)
    poll_interval: float = Field(default=1.0, gt=0, le=3600)
    channel: str | None = Field(default=None, min_length=1)  # a NOTIFY that wakes the source


class PostgresOutboxSource(BrokerSource[PostgresOutboxOptions]):
    kind = "outbox"
    default_type = "postgres.outbox.row"

    def resource(self) -> str:
        return self.options.table

    def _queries(self) -> tuple[str, str]:
        o = self.options
        table = quote_identifier(o.table)
        ident, delivered = quote_identifier(o.id_column), quote_identifier(o.delivered_column)
        columns = [ident, quote_identifier(o.payload_column)]
        for extra in (o.type_column, o.subject_column):
            columns.append(quote_identifier(extra) if extra else "NULL")
        select = (
            f"SELECT {', '.join(columns)} FROM {table} WHERE {delivered} IS NULL "
            f"ORDER BY {ident} LIMIT $1 FOR UPDATE SKIP LOCKED"
        )
        update = f"UPDATE {table} SET {delivered} = now() WHERE {ident} = ANY($1)"
        return select, update

    async def consume(self) -> None:
        asyncpg = _driver()
        wake = asyncio.Event()
        closed = asyncio.Event()
        conn = await asyncpg.connect(self.url, timeout=10)

        def terminated(_conn: Any) -> None:
            closed.set()
            wake.set()

        conn.add_termination_listener(terminated)
        try:
            if self.options.channel:
                await conn.add_listener(self.options.channel, lambda *_args: wake.set())
            select, update = self._queries()
            self.connected()
            while True:
                wake.clear()
                if await self._pass(conn, select, update) == self.options.batch:
                    continue
                if closed.is_set():
                    raise ConnectionError("the PostgreSQL connection closed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), self.options.poll_interval)
        finally:
            # terminate(), not close(): it cannot be interrupted by the stop that
            # cancels this task, so no connection is ever left open.
            with contextlib.suppress(Exception):
                conn.terminate()

    async def _pass(self, conn: Any, select: str, update: str) -> int:
        """Publish one batch of undelivered rows, and mark them; returns how many."""
        table = self.options.table
        async with conn.transaction():
            rows = await conn.fetch(select, self.options.batch)
            if not rows:
                return 0
            messages = [
                Message(
                    payload=_payload(row[1]),
                    subject=str(row[3]) if row[3] is not None else table,
                    stable_id=f"{table}-{row[0]}",
                    message_id=str(row[0]),
                    event_type=str(row[2]) if row[2] is not None else None,
                )
                for row in rows
            ]
            # Rows that cannot become events are marked too: they never will.
            await self.commit(messages)
            await conn.execute(update, [row[0] for row in rows])
        return len(rows)


class PostgresOutboxKind(BrokerKind[PostgresOutboxOptions]):
    name = "outbox"
    schemes = SCHEMES
    options_model = PostgresOutboxOptions
    source_class = PostgresOutboxSource

    def check(self, options: PostgresOutboxOptions, *, where: str) -> None:
        parts = options.table.split(".")
        names = [("table", part) for part in parts] if len(parts) <= 2 else [("table", "")]
        for key in ("id_column", "payload_column", "delivered_column"):
            names.append((key, getattr(options, key)))
        for key in ("type_column", "subject_column"):
            if getattr(options, key) is not None:
                names.append((key, getattr(options, key)))
        for key, value in names:
            if not _IDENTIFIER.match(value):
                raise ConfigError(
                    f"{where}.{key}: expected a plain SQL name (letters, digits, _), "
                    f"or schema.table for the table; got {value!r}"
                )
