"""Named JSON documents by kind: the state of sources and their settings (webhooks,
bucket settings, access keys, a schedule's last firing) without a table each.

Each kind belongs to one component, which owns the shape of its bodies.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from triggerfish.errors import NotFoundError
from triggerfish.store import schema as t

Transaction = Callable[[], AbstractAsyncContextManager[AsyncConnection]]


class Documents:
    def __init__(self, read: Transaction, write: Transaction) -> None:
        self._read = read
        self._write = write

    async def put(self, kind: str, name: str, body: dict[str, Any]) -> None:
        """Create or replace the document ``name`` of ``kind``."""
        async with self._write() as conn:
            key = (t.documents.c.kind == kind) & (t.documents.c.name == name)
            updated = await conn.execute(
                t.documents.update().where(key).values(body=body, updated_at=time.time())
            )
            if updated.rowcount == 0:
                await conn.execute(
                    t.documents.insert().values(
                        kind=kind, name=name, body=body, updated_at=time.time()
                    )
                )

    async def get(self, kind: str, name: str) -> dict[str, Any]:
        """The body; NotFoundError naming the kind when there is none."""
        body = await self.find(kind, name)
        if body is None:
            raise NotFoundError(f"no {kind} named {name!r}")
        return body

    async def find(self, kind: str, name: str) -> dict[str, Any] | None:
        async with self._read() as conn:
            row = (
                await conn.execute(
                    sa.select(t.documents.c.body).where(
                        (t.documents.c.kind == kind) & (t.documents.c.name == name)
                    )
                )
            ).first()
        return None if row is None else dict(row.body)

    async def list(self, kind: str) -> dict[str, dict[str, Any]]:
        """Every document of ``kind``, by name."""
        async with self._read() as conn:
            rows = await conn.execute(
                sa.select(t.documents.c.name, t.documents.c.body)
                .where(t.documents.c.kind == kind)
                .order_by(t.documents.c.name)
            )
            return {row.name: dict(row.body) for row in rows}

    async def delete(self, kind: str, name: str) -> bool:
        """Remove it; False when there was none."""
        async with self._write() as conn:
            result = await conn.execute(
                t.documents.delete().where(
                    (t.documents.c.kind == kind) & (t.documents.c.name == name)
                )
            )
        return bool(result.rowcount)
