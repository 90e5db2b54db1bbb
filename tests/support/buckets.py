"""The object store on each of its backends: its own SQLite index and files, or a
fresh PostgreSQL database shared as by the nodes of a cluster."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from support.postgresql import fresh_postgresql
from triggerfish.bus.base import Bus
from triggerfish.sources.buckets import BucketStore
from triggerfish.sources.buckets.blobs import BlobReader
from triggerfish.store import SqlStore
from triggerfish.store import schema as t
from triggerfish.store.documents import Transaction

BACKENDS = ["sqlite", "postgresql"]


@dataclass
class BucketBackend:
    name: str
    store: SqlStore | None = None  # the shared store, on PostgreSQL

    @property
    def transactions(self) -> tuple[Transaction, Transaction]:
        assert self.store is not None, "only the PostgreSQL backend has a shared store"
        return self.store._read, self.store._write

    def bucket_store(self, root: Path, bus: Bus, **options: Any) -> BucketStore:
        """A ``BucketStore`` (not started) of this backend; on PostgreSQL, every one
        made here shares the same database, as the nodes of a cluster do."""
        database = None if self.store is None else self.transactions
        return BucketStore(root, bus, database=database, **options)

    async def live_blobs(self, buckets: BucketStore) -> int:
        """How many stored blobs are still named (or not yet dropped): blob files on
        SQLite, blobs with chunks in the database and not waiting to be collected on
        PostgreSQL."""
        if self.store is None:
            return sum(1 for path in (buckets.root / "blobs").rglob("*") if path.is_file())
        chunks, garbage = t.bucket_blobs.c, t.bucket_garbage.c
        async with self.store._read() as conn:
            count = await conn.scalar(
                sa.select(sa.func.count(sa.distinct(chunks.blob))).where(
                    chunks.blob.not_in(sa.select(garbage.blob))
                )
            )
        return int(count or 0)


@asynccontextmanager
async def bucket_backend(name: str) -> AsyncIterator[BucketBackend]:
    if name == "sqlite":
        yield BucketBackend(name)
        return
    async with fresh_postgresql() as url, SqlStore(url) as store:
        yield BucketBackend(name, store)


async def read_all(reader: BlobReader) -> bytes:
    """Every byte of an open object, and close it."""
    try:
        return b"".join([piece async for piece in reader.stream()])
    finally:
        await reader.aclose()
