"""``PostgresBlobs``: the bytes of objects in the shared store, where every node reads them.

A blob is rows of ``tf_bucket_blobs``: chunks of ``CHUNK`` bytes (the last one shorter),
each keyed by the blob's name and the offset where it starts, so a reader fetches one
chunk at a time and a range read starts at the chunk that holds its first byte.

Writing: a ``BlobWriter`` receives the bytes in the node's ``tmp/`` folder (computing
their MD5, as for a file blob); ``seal`` only closes that file. The chunks go into the
database in the same transaction as the index row that names the blob
(``PostgresIndex`` calls ``attach``): a blob and its row are committed together or not
at all, so nothing is ever left half written or unnamed, whatever node dies when.

Removing: a replaced or deleted object's blob is not deleted in that transaction but
noted in ``tf_bucket_garbage`` (``drop``), because a reader on any node may be
streaming it, chunk by chunk, in transactions of its own. ``sweep`` deletes the chunks
of blobs dropped more than ``grace`` seconds ago; a node runs it at start and at most
once a ``sweep_every`` while it removes blobs. A read that outlasts the grace period
fails rather than return bytes of two versions.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from triggerfish.errors import AdapterError
from triggerfish.sources.buckets.blobs import READ_CHUNK, BlobReader, BlobWriter
from triggerfish.store import schema as t
from triggerfish.store.documents import Transaction

log = logging.getLogger("triggerfish.buckets")

#: The size of a stored chunk: large enough that a 1 GB object is a thousand rows,
#: small enough that a reader or writer holds one in memory without noticing.
CHUNK = 1024 * 1024
_SWEEP_BATCH = 100


class PostgresReader:
    """Streams a blob one chunk (one short read transaction) at a time."""

    def __init__(self, read: Transaction, blob: str) -> None:
        self._read = read
        self._blob = blob

    async def stream(self, first: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        if length == 0:
            return
        c = t.bucket_blobs.c
        chunk = await self._chunk(c.start <= first, c.start.desc())
        position = first
        left = length
        while chunk is not None:
            start, data = chunk
            piece = data[position - start :]
            if left is not None:
                piece = piece[:left]
                left -= len(piece)
            for at in range(0, len(piece), READ_CHUNK):
                yield piece[at : at + READ_CHUNK]
            position = start + len(data)
            if left == 0:
                return
            chunk = await self._chunk(c.start == position, c.start)
        if left:
            raise AdapterError(
                f"the bytes of blob {self._blob} ended {left} bytes early: the object was "
                "replaced or deleted longer ago than the grace period of its readers"
            )

    async def _chunk(self, where: sa.ColumnElement[bool], order: Any) -> tuple[int, bytes] | None:
        c = t.bucket_blobs.c
        async with self._read() as conn:
            row = (
                await conn.execute(
                    sa.select(c.start, c.data)
                    .where(c.blob == self._blob, where)
                    .order_by(order)
                    .limit(1)
                )
            ).first()
        return None if row is None else (int(row.start), bytes(row.data))

    async def aclose(self) -> None:
        return None


class PostgresBlobs:
    def __init__(
        self,
        root: Path,
        read: Transaction,
        write: Transaction,
        *,
        grace: float = 3600.0,
        sweep_every: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``root``: the node's folder for uploads in progress; ``grace``: how long the
        bytes of a replaced or deleted object stay for readers that opened it."""
        self._tmp = root / "tmp"
        self._read = read
        self._write = write
        self._grace = grace
        self._sweep_every = sweep_every
        self._clock = clock
        self._sealed: dict[str, Path] = {}
        self._swept = 0.0

    def writer(self) -> BlobWriter:
        return BlobWriter(self._tmp / f"{uuid.uuid4().hex}.part")

    async def prepare(self, keep: Callable[[], Awaitable[set[str]]]) -> int:
        """Empty the node's ``tmp/`` (uploads a crash interrupted) and sweep. ``keep`` is
        not needed: every stored blob was committed with the row that names it."""
        await asyncio.to_thread(_empty, self._tmp)
        await self.sweep()
        return 0

    async def seal(self, writer: BlobWriter) -> str:
        await asyncio.to_thread(writer.close, durable=False)
        name = uuid.uuid4().hex
        self._sealed[name] = writer.path
        return name

    async def attach(self, conn: AsyncConnection, blob: str) -> None:
        """Store the chunks of the sealed ``blob`` in ``conn``'s transaction (the one
        that writes the row naming it), then forget its file."""
        path = self._sealed.pop(blob, None)
        assert path is not None, f"blob {blob} was not sealed here or is stored already"
        handle: BinaryIO = await asyncio.to_thread(path.open, "rb")
        try:
            start = 0
            while data := await asyncio.to_thread(handle.read, CHUNK):
                await conn.execute(
                    t.bucket_blobs.insert().values(blob=blob, start=start, data=data)
                )
                start += len(data)
        finally:
            handle.close()
            await asyncio.to_thread(path.unlink, missing_ok=True)

    async def drop(self, conn: AsyncConnection, blobs: Sequence[str]) -> None:
        """Note, in ``conn``'s transaction, that no row names ``blobs`` any more."""
        if blobs:
            now = self._clock()
            await conn.execute(
                t.bucket_garbage.insert(), [{"blob": blob, "dropped": now} for blob in blobs]
            )

    async def open(self, blob: str) -> BlobReader:
        return PostgresReader(self._read, blob)

    async def remove(self, blobs: Sequence[str]) -> None:
        """Forget sealed blobs that no row came to name; stored ones were dropped in
        the transaction that stopped naming them. Sweeps now and then."""
        for blob in blobs:
            path = self._sealed.pop(blob, None)
            if path is not None:
                await asyncio.to_thread(path.unlink, missing_ok=True)
        if blobs and self._clock() - self._swept >= self._sweep_every:
            await self.sweep()

    async def sweep(self) -> int:
        """Delete the chunks of blobs dropped more than the grace period ago; returns
        how many blobs. Nodes sweeping at once share the work (SKIP LOCKED)."""
        self._swept = self._clock()
        g = t.bucket_garbage.c
        total = 0
        while True:
            async with self._write() as conn:
                due = list(
                    await conn.scalars(
                        sa.select(g.blob)
                        .where(g.dropped <= self._clock() - self._grace)
                        .order_by(g.dropped)
                        .limit(_SWEEP_BATCH)
                        .with_for_update(skip_locked=True)
                    )
                )
                if due:
                    await conn.execute(
                        t.bucket_blobs.delete().where(t.bucket_blobs.c.blob.in_(due))
                    )
                    await conn.execute(t.bucket_garbage.delete().where(g.blob.in_(due)))
            total += len(due)
            if len(due) < _SWEEP_BATCH:
                if total:
                    log.info("removed the bytes of %d replaced or deleted object(s)", total)
                return total


def _empty(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
