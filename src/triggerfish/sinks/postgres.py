"""PostgreSQL sinks: ``NOTIFY`` on a channel, and ``INSERT`` into an outbox table.

NOTIFY carries text only (under 8000 bytes): raw format sends the data as text, and an
event whose data is not UTF-8 text, or is too long, is rejected (moved to the relay's
dead-letter topic) since no retry could send it.

The outbox sink inserts one row per event into the table named by the target:
``payload_column`` gets the body as text (base64 when it is not UTF-8), and, when set,
``headers_column`` the CloudEvents attributes as a JSON object (with ``content-type``)
and ``id_column`` the event id. With ``id_column`` (a unique column) the insert is
``ON CONFLICT DO NOTHING``: an event sent again after a crash is stored once.
"""

from __future__ import annotations

import base64
import re
from typing import Any

import orjson

from triggerfish.events.model import Event
from triggerfish.sinks.base import Sink, SinkRejectedError
from triggerfish.sinks.message import Outgoing
from triggerfish.sources.brokers.base import require
from triggerfish.sources.brokers.postgres import quote_identifier

_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$")
NOTIFY_LIMIT = 7999  # bytes; PostgreSQL refuses a payload of 8000 or more


class _PostgresSink(Sink):
    _conn: Any = None

    async def _connect(self) -> None:
        asyncpg = require("asyncpg")
        self._conn = await asyncpg.connect(self.url, timeout=10)

    async def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close(timeout=5)


class PostgresNotifySink(_PostgresSink):
    kind = "postgres"

    async def _send(self, address: str, event: Event, message: Outgoing) -> None:
        try:
            text = message.body.decode("utf-8")
        except UnicodeDecodeError:
            raise SinkRejectedError(
                f"event {event.id}: NOTIFY carries text only; this body is binary "
                "(use format: cloudevent)"
            ) from None
        if len(message.body) > NOTIFY_LIMIT:
            raise SinkRejectedError(
                f"event {event.id}: {len(message.body)} bytes is over NOTIFY's limit "
                f"({NOTIFY_LIMIT}); use an outbox broker for large events"
            )
        await self._conn.execute("SELECT pg_notify($1, $2)", address, text)


class PostgresOutboxSink(_PostgresSink):
    kind = "outbox"

    async def _send(self, address: str, event: Event, message: Outgoing) -> None:
        config = self.config
        if not _TABLE.match(address):
            raise SinkRejectedError(
                f"event {event.id}: {address!r} is not a table name (letters, digits and '_',"
                " optionally schema.table)"
            )
        try:
            payload = message.body.decode("utf-8")
        except UnicodeDecodeError:
            payload = base64.b64encode(message.body).decode("ascii")
        columns = [config.payload_column]
        values: list[Any] = [payload]
        if config.headers_column:
            headers = dict(message.attributes)
            if message.content_type:
                headers["content-type"] = message.content_type
            columns.append(config.headers_column)
            values.append(orjson.dumps(headers).decode())
        if config.id_column:
            columns.append(config.id_column)
            values.append(event.id)
        names = ", ".join(quote_identifier(c) for c in columns)
        marks = ", ".join(f"${n}" for n in range(1, len(values) + 1))
        sql = f"INSERT INTO {quote_identifier(address)} ({names}) VALUES ({marks})"
        if config.id_column:
            sql += " ON CONFLICT DO NOTHING"
        await self._conn.execute(sql, *values)
