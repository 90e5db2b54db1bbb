"""``PostgresIndex``: the object index in the shared store, the same for every node.

The tables are those of revision 0003 (``store/schema.py``); each method is one
transaction of the store's own pool. Object bytes go in with their row: ``put``,
``put_part`` and ``finish_upload`` ask ``PostgresBlobs`` to store the sealed blob in
the same transaction, and blobs no row names any more are dropped there too.

Concurrency between nodes, where SQLite had one writer:
- A write into a bucket locks the bucket's row for share, and deleting a bucket locks
  it for update, so a bucket is never deleted under an object being written.
- Completing or aborting an upload locks its row for update, writing a part locks it
  for share: no part lands in an upload that is gone.
- Replacing a row reads the replaced blob under a row lock (or inserts where there was
  none), so of two writers of one key each drops exactly the blob it replaced.
- Sequencers come from the counter ``bucket-sequencer`` of ``tf_generations``, bumped
  last in the transaction so its row lock is held only until the commit; changes are
  numbered in the order they commit.
- ``drain`` locks the outbox rows it publishes until it has deleted them. For the rows
  of a change just made it waits for another node that holds them (so the change is
  published when the call returns); when draining everything at start it skips locked
  rows (``FOR UPDATE SKIP LOCKED``), so nodes starting together never publish one row
  twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from triggerfish.sources.buckets.checksums import Checksum
from triggerfish.sources.buckets.conditions import WriteCondition
from triggerfish.sources.buckets.index import (
    Notify,
    ObjectRow,
    PartRow,
    Publish,
    UploadRow,
    object_meta,
)
from triggerfish.sources.buckets.postgres_blobs import PostgresBlobs
from triggerfish.store import schema as t
from triggerfish.store.documents import Transaction

SEQUENCER = "bucket-sequencer"
_DRAIN_BATCH = 500


class PostgresIndex:
    def __init__(self, read: Transaction, write: Transaction, blobs: PostgresBlobs) -> None:
        self._read = read
        self._write = write
        self._blobs = blobs

    async def close(self) -> None:
        return None  # the connections are the store's

    # -- buckets -----------------------------------------------------------------------

    async def buckets(self) -> list[tuple[str, float]]:
        b = t.buckets.c
        async with self._read() as conn:
            rows = await conn.execute(sa.select(b.name, b.created).order_by(b.name))
            return [(row.name, row.created) for row in rows]

    async def bucket_exists(self, name: str) -> bool:
        async with self._read() as conn:
            found = await conn.scalar(sa.select(sa.literal(1)).where(t.buckets.c.name == name))
        return found is not None

    async def create_bucket(self, name: str, created: float) -> bool:
        async with self._write() as conn:
            result = await conn.execute(
                postgresql.insert(t.buckets)
                .values(name=name, created=created)
                .on_conflict_do_nothing()
                .returning(t.buckets.c.name)
            )
            return result.first() is not None

    async def delete_bucket(self, name: str) -> tuple[str, list[str]]:
        async with self._write() as conn:
            if not await _lock_bucket(conn, name, share=False):
                return "missing", []
            o = t.objects.c
            if await conn.scalar(sa.select(sa.literal(1)).where(o.bucket == name).limit(1)):
                return "not-empty", []
            ids = sa.select(t.uploads.c.id).where(t.uploads.c.bucket == name)
            blobs = list(
                await conn.scalars(
                    t.parts.delete().where(t.parts.c.upload.in_(ids)).returning(t.parts.c.blob)
                )
            )
            await conn.execute(t.uploads.delete().where(t.uploads.c.bucket == name))
            await conn.execute(t.buckets.delete().where(t.buckets.c.name == name))
            await self._blobs.drop(conn, blobs)
            return "gone", blobs

    # -- objects -----------------------------------------------------------------------

    async def get(self, bucket: str, key: str) -> ObjectRow | None:
        o = t.objects.c
        async with self._read() as conn:
            row = (
                await conn.execute(sa.select(t.objects).where(o.bucket == bucket, o.key == key))
            ).first()
        return None if row is None else _object(row)

    async def put(
        self, row: ObjectRow, notify: Notify | None, condition: WriteCondition | None = None
    ) -> tuple[str | None, list[int]] | None:
        async with self._write() as conn:
            if not await _lock_bucket(conn, row.bucket):
                return None
            await self._blobs.attach(conn, row.blob)
            old = await _replace(conn, t.objects, _object_values(row), ("bucket", "key"), condition)
            if old is not None:
                await self._blobs.drop(conn, [old])
            return old, await _notify(conn, notify, 1)

    async def delete(
        self, bucket: str, keys: Sequence[str], notify: Callable[[list[str]], Notify]
    ) -> tuple[list[str], list[str], list[int]] | None:
        o = t.objects.c
        async with self._write() as conn:
            if not await _lock_bucket(conn, bucket):
                return None
            gone = {
                row.key: row.blob
                for row in await conn.execute(
                    t.objects.delete()
                    .where(o.bucket == bucket, o.key.in_(list(keys)))
                    .returning(o.key, o.blob)
                )
            }
            removed = [key for key in dict.fromkeys(keys) if key in gone]
            blobs = [gone[key] for key in removed]
            await self._blobs.drop(conn, blobs)
            return removed, blobs, await _notify(conn, notify(removed), len(removed))

    async def scan(
        self, bucket: str, start: str, upper: str | None, limit: int, *, inclusive: bool = False
    ) -> list[ObjectRow]:
        o = t.objects.c
        query = sa.select(t.objects).where(
            o.bucket == bucket, o.key >= start if inclusive else o.key > start
        )
        if upper is not None:
            query = query.where(o.key < upper)
        async with self._read() as conn:
            rows = await conn.execute(query.order_by(o.key).limit(limit))
            return [_object(row) for row in rows]

    async def blobs(self) -> set[str]:
        async with self._read() as conn:
            found = set(await conn.scalars(sa.select(t.objects.c.blob)))
            found.update(await conn.scalars(sa.select(t.parts.c.blob)))
        return found

    # -- multipart uploads -------------------------------------------------------------

    async def create_upload(self, upload: UploadRow) -> bool:
        async with self._write() as conn:
            if not await _lock_bucket(conn, upload.bucket):
                return False
            await conn.execute(
                t.uploads.insert().values(
                    id=upload.id,
                    bucket=upload.bucket,
                    key=upload.key,
                    created=upload.created,
                    content_type=upload.content_type,
                    meta=object_meta(upload.metadata, upload.headers, checksum=upload.checksum),
                )
            )
            return True

    async def upload(self, upload_id: str) -> UploadRow | None:
        async with self._read() as conn:
            row = (
                await conn.execute(sa.select(t.uploads).where(t.uploads.c.id == upload_id))
            ).first()
        return None if row is None else _upload(row)

    async def uploads(self, bucket: str) -> list[UploadRow]:
        u = t.uploads.c
        async with self._read() as conn:
            rows = await conn.execute(
                sa.select(t.uploads).where(u.bucket == bucket).order_by(u.key, u.created)
            )
            return [_upload(row) for row in rows]

    async def put_part(self, upload_id: str, part: PartRow) -> tuple[bool, str | None]:
        async with self._write() as conn:
            if not await _lock_upload(conn, upload_id, share=True):
                return False, None
            await self._blobs.attach(conn, part.blob)
            values = {
                "upload": upload_id,
                "number": part.number,
                "blob": part.blob,
                "size": part.size,
                "etag": part.etag,
                "modified": part.modified,
                "meta": {"checksum": part.checksum.to_json()} if part.checksum else {},
            }
            old = await _replace(conn, t.parts, values, ("upload", "number"))
            if old is not None:
                await self._blobs.drop(conn, [old])
            return True, old

    async def parts(self, upload_id: str) -> list[PartRow]:
        p = t.parts.c
        async with self._read() as conn:
            rows = await conn.execute(
                sa.select(t.parts).where(p.upload == upload_id).order_by(p.number)
            )
            return [
                PartRow(r.number, r.blob, r.size, r.etag, r.modified, _checksum(r.meta))
                for r in rows
            ]

    async def finish_upload(
        self,
        upload_id: str,
        row: ObjectRow | None,
        notify: Notify | None,
        condition: WriteCondition | None = None,
    ) -> tuple[list[str], list[int]] | None:
        async with self._write() as conn:
            # The bucket before the upload: the order in which delete_bucket locks them.
            if row is not None and not await _lock_bucket(conn, row.bucket):
                return None
            if not await _lock_upload(conn, upload_id, share=False):
                return None
            blobs = list(
                await conn.scalars(
                    t.parts.delete().where(t.parts.c.upload == upload_id).returning(t.parts.c.blob)
                )
            )
            await conn.execute(t.uploads.delete().where(t.uploads.c.id == upload_id))
            seqs: list[int] = []
            if row is not None:
                await self._blobs.attach(conn, row.blob)
                old = await _replace(
                    conn, t.objects, _object_values(row), ("bucket", "key"), condition
                )
                if old is not None:
                    blobs.append(old)
                seqs = await _notify(conn, notify, 1)
            await self._blobs.drop(conn, blobs)
            return blobs, seqs

    # -- outbox ------------------------------------------------------------------------

    async def drain(self, seqs: Sequence[int] | None, publish: Publish) -> None:
        if seqs is not None and not seqs:
            return
        ob = t.bucket_outbox.c
        while True:
            query = sa.select(ob.seq, ob.topic, ob.event).order_by(ob.seq)
            if seqs is None:
                query = query.limit(_DRAIN_BATCH).with_for_update(skip_locked=True)
            else:
                query = query.where(ob.seq.in_(list(seqs))).with_for_update()
            async with self._write() as conn:
                rows = (await conn.execute(query)).all()
                by_topic: dict[str, list[tuple[int, bytes]]] = {}
                for row in rows:
                    by_topic.setdefault(row.topic, []).append((row.seq, bytes(row.event)))
                for topic, items in by_topic.items():
                    await publish(topic, [event for _seq, event in items])
                    done = [seq for seq, _event in items]
                    await conn.execute(t.bucket_outbox.delete().where(ob.seq.in_(done)))
            if seqs is not None or len(rows) < _DRAIN_BATCH:
                return


async def _lock_bucket(conn: AsyncConnection, name: str, *, share: bool = True) -> bool:
    """Lock the bucket's row (for share, or for update); False when there is none."""
    query = sa.select(sa.literal(1)).where(t.buckets.c.name == name)
    found = await conn.scalar(query.with_for_update(read=share))
    return found is not None


async def _lock_upload(conn: AsyncConnection, upload_id: str, *, share: bool) -> bool:
    query = sa.select(sa.literal(1)).where(t.uploads.c.id == upload_id)
    found = await conn.scalar(query.with_for_update(read=share))
    return found is not None


async def _replace(
    conn: AsyncConnection,
    table: sa.Table,
    values: dict[str, Any],
    keys: tuple[str, ...],
    condition: WriteCondition | None = None,
) -> str | None:
    """Write the row of ``values``; the blob of the row it replaced, if any.
    ``condition`` is checked against the ETag of the row locked, or against none just
    before inserting where there was none: an insert that loses to another one goes
    round again and checks the winner's row."""
    match = sa.and_(*(table.c[name] == values[name] for name in keys))
    while True:
        old_row = (
            await conn.execute(sa.select(table.c.blob, table.c.etag).where(match).with_for_update())
        ).first()
        if condition is not None:
            condition.check(None if old_row is None else str(old_row.etag))
        if old_row is not None:
            await conn.execute(table.update().where(match).values(**values))
            return str(old_row.blob)
        inserted = await conn.execute(
            postgresql.insert(table)
            .values(**values)
            .on_conflict_do_nothing()
            .returning(table.c.blob)
        )
        if inserted.first() is not None:
            return None
        # Another transaction inserted the key in between: lock its row and replace it.


async def _notify(conn: AsyncConnection, notify: Notify | None, count: int) -> list[int]:
    """Write the outbox rows of a change, numbered from the store-wide sequencer."""
    if notify is None or count == 0:
        return []
    g = t.generations.c
    bump = postgresql.insert(t.generations).values(name=SEQUENCER, value=count)
    last = await conn.scalar(
        bump.on_conflict_do_update(
            index_elements=[g.name], set_={"value": g.value + count}
        ).returning(g.value)
    )
    rows = [{"topic": topic, "event": event} for topic, event in notify(int(last) - count + 1)]
    if not rows:
        return []
    ob = t.bucket_outbox.c
    return list(await conn.scalars(t.bucket_outbox.insert().values(rows).returning(ob.seq)))


def _checksum(meta: Any) -> Checksum | None:
    return Checksum.from_json(meta.get("checksum")) if isinstance(meta, dict) else None


def _object_values(row: ObjectRow) -> dict[str, Any]:
    return {
        "bucket": row.bucket,
        "key": row.key,
        "blob": row.blob,
        "size": row.size,
        "etag": row.etag,
        "modified": row.modified,
        "content_type": row.content_type,
        "meta": object_meta(
            row.metadata, row.headers, upload=row.upload, parts=row.parts, checksum=row.checksum
        ),
    }


def _object(row: Any) -> ObjectRow:
    return ObjectRow(
        bucket=row.bucket,
        key=row.key,
        blob=row.blob,
        size=row.size,
        etag=row.etag,
        modified=row.modified,
        content_type=row.content_type,
        metadata=dict(row.meta.get("metadata", {})),
        headers=dict(row.meta.get("headers", {})),
        upload=row.meta.get("upload"),
        parts=tuple(row.meta.get("parts", ())),
        checksum=_checksum(row.meta),
    )


def _upload(row: Any) -> UploadRow:
    return UploadRow(
        id=row.id,
        bucket=row.bucket,
        key=row.key,
        created=row.created,
        content_type=row.content_type,
        metadata=dict(row.meta.get("metadata", {})),
        headers=dict(row.meta.get("headers", {})),
        checksum=_checksum(row.meta),
    )
