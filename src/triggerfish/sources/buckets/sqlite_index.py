"""``SqliteIndex``: the object index of one node, in a SQLite file of its data directory.

The SQLite work is synchronous (``_IndexFile``, one connection that a lock guards);
``SqliteIndex`` runs each call in a worker thread so the event loop never waits on the
disk. A change of an object and its notification are written in one transaction (the
``outbox``). Keys compare as UTF-8 bytes (SQLite's BINARY collation), which is S3's
listing order.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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
from triggerfish.sqlite_files import keeping_wal_index

SCHEMA = """
CREATE TABLE IF NOT EXISTS buckets (name TEXT PRIMARY KEY, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS objects (
    bucket TEXT NOT NULL, key TEXT NOT NULL, blob TEXT NOT NULL, size INTEGER NOT NULL,
    etag TEXT NOT NULL, modified REAL NOT NULL, content_type TEXT NOT NULL,
    meta TEXT NOT NULL, PRIMARY KEY (bucket, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS uploads (
    id TEXT PRIMARY KEY, bucket TEXT NOT NULL, key TEXT NOT NULL, created REAL NOT NULL,
    content_type TEXT NOT NULL, meta TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS parts (
    upload TEXT NOT NULL, number INTEGER NOT NULL, blob TEXT NOT NULL, size INTEGER NOT NULL,
    etag TEXT NOT NULL, modified REAL NOT NULL, PRIMARY KEY (upload, number)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY, topic TEXT NOT NULL, event BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


def _replace_object(
    conn: sqlite3.Connection, row: ObjectRow, condition: WriteCondition | None = None
) -> str | None:
    """Write the object's row (if ``condition`` holds: the transaction is the only
    writer); the blob it replaced, if any, to be removed."""
    old = conn.execute(
        "SELECT blob, etag FROM objects WHERE bucket = ? AND key = ?", (row.bucket, row.key)
    ).fetchone()
    if condition is not None:
        condition.check(None if old is None else str(old["etag"]))
    conn.execute(
        "INSERT OR REPLACE INTO objects "
        "(bucket, key, blob, size, etag, modified, content_type, meta) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (row.bucket, row.key, row.blob, row.size, row.etag, row.modified, row.content_type,
         _json(object_meta(row.metadata, row.headers, upload=row.upload, parts=row.parts,
               checksum=row.checksum))),
    )  # fmt: skip
    return str(old["blob"]) if old is not None else None


def _json(meta: dict[str, Any]) -> str:
    """A ``meta`` document (``object_meta``) as the JSON text this index stores."""
    return json.dumps(meta, sort_keys=True)


def _object(row: sqlite3.Row) -> ObjectRow:
    meta = json.loads(row["meta"])
    return ObjectRow(
        bucket=row["bucket"],
        key=row["key"],
        blob=row["blob"],
        size=row["size"],
        etag=row["etag"],
        modified=row["modified"],
        content_type=row["content_type"],
        metadata=meta.get("metadata", {}),
        headers=meta.get("headers", {}),
        upload=meta.get("upload"),
        parts=tuple(meta.get("parts", ())),
        checksum=Checksum.from_json(meta.get("checksum")),
    )


def _part(row: sqlite3.Row) -> PartRow:
    meta = json.loads(row["meta"] or "{}")
    checksum = Checksum.from_json(meta.get("checksum"))
    return PartRow(row["number"], row["blob"], row["size"], row["etag"], row["modified"], checksum)


def _part_meta(part: PartRow) -> str:
    return json.dumps({"checksum": part.checksum.to_json()} if part.checksum else {})


class _IndexFile:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(SCHEMA)
        columns = {row["name"] for row in self._conn.execute("PRAGMA table_info(parts)")}
        if "meta" not in columns:  # an index written before parts kept checksums
            self._conn.execute("ALTER TABLE parts ADD COLUMN meta TEXT")
        self._lock = threading.Lock()

    def close(self) -> None:
        # The -shm file stays: a start on a disk that filled up meanwhile opens the index.
        with self._lock, keeping_wal_index(self._path):
            self._conn.close()

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _notify(self, conn: sqlite3.Connection, notify: Notify | None, count: int) -> list[int]:
        if notify is None or count == 0:
            return []
        row = conn.execute("SELECT value FROM counters WHERE name = 'sequencer'").fetchone()
        first = (row["value"] if row else 0) + 1
        conn.execute(
            "INSERT INTO counters (name, value) VALUES ('sequencer', ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (first + count - 1,),
        )
        seqs = []
        for topic, event in notify(first):
            cursor = conn.execute("INSERT INTO outbox (topic, event) VALUES (?, ?)", (topic, event))
            seqs.append(int(cursor.lastrowid or 0))
        return seqs

    # -- buckets ---------------------------------------------------------------------

    def buckets(self) -> list[tuple[str, float]]:
        with self._read() as conn:
            rows = conn.execute("SELECT name, created FROM buckets ORDER BY name").fetchall()
        return [(row["name"], row["created"]) for row in rows]

    def bucket_exists(self, name: str) -> bool:
        with self._read() as conn:
            return (
                conn.execute("SELECT 1 FROM buckets WHERE name = ?", (name,)).fetchone() is not None
            )

    def create_bucket(self, name: str, created: float) -> bool:
        """False when it existed already."""
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT INTO buckets (name, created) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (name, created),
            )
            return cursor.rowcount == 1

    def delete_bucket(self, name: str) -> tuple[str, list[str]]:
        """'gone', 'missing' or 'not-empty', and the blobs of aborted uploads to remove."""
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM buckets WHERE name = ?", (name,)).fetchone() is None:
                return "missing", []
            if conn.execute("SELECT 1 FROM objects WHERE bucket = ? LIMIT 1", (name,)).fetchone():
                return "not-empty", []
            blobs = [
                row["blob"]
                for row in conn.execute(
                    "SELECT p.blob FROM parts p JOIN uploads u ON p.upload = u.id "
                    "WHERE u.bucket = ?",
                    (name,),
                )
            ]
            conn.execute(
                "DELETE FROM parts WHERE upload IN (SELECT id FROM uploads WHERE bucket = ?)",
                (name,),
            )
            conn.execute("DELETE FROM uploads WHERE bucket = ?", (name,))
            conn.execute("DELETE FROM buckets WHERE name = ?", (name,))
            return "gone", blobs

    # -- objects ---------------------------------------------------------------------

    def get(self, bucket: str, key: str) -> ObjectRow | None:
        with self._read() as conn:
            row = conn.execute(
                "SELECT * FROM objects WHERE bucket = ? AND key = ?", (bucket, key)
            ).fetchone()
        return None if row is None else _object(row)

    def put(
        self, row: ObjectRow, notify: Notify | None, condition: WriteCondition | None = None
    ) -> tuple[str | None, list[int]] | None:
        """Store ``row``; returns the blob it replaced and the outbox rows written, or
        None when the bucket does not exist."""
        with self._write() as conn:
            if (
                conn.execute("SELECT 1 FROM buckets WHERE name = ?", (row.bucket,)).fetchone()
                is None
            ):
                return None
            old = _replace_object(conn, row, condition)
            seqs = self._notify(conn, notify, 1)
            return old, seqs

    def delete(
        self, bucket: str, keys: Sequence[str], notify: Callable[[list[str]], Notify]
    ) -> tuple[list[str], list[str], list[int]] | None:
        """Remove the keys that exist; returns (keys removed, their blobs, outbox rows),
        or None when the bucket does not exist."""
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM buckets WHERE name = ?", (bucket,)).fetchone() is None:
                return None
            removed, blobs = [], []
            for key in keys:
                row = conn.execute(
                    "DELETE FROM objects WHERE bucket = ? AND key = ? RETURNING blob",
                    (bucket, key),
                ).fetchone()
                if row is not None:
                    removed.append(key)
                    blobs.append(row["blob"])
            seqs = self._notify(conn, notify(removed), len(removed))
            return removed, blobs, seqs

    def scan(
        self, bucket: str, start: str, upper: str | None, limit: int, *, inclusive: bool = False
    ) -> list[ObjectRow]:
        """Objects with key above ``start`` (or equal, when ``inclusive``) and below
        ``upper``, in key order."""
        sql = f"SELECT * FROM objects WHERE bucket = ? AND key {'>=' if inclusive else '>'} ?"
        args: list[Any] = [bucket, start]
        if upper is not None:
            sql += " AND key < ?"
            args.append(upper)
        sql += " ORDER BY key LIMIT ?"
        args.append(limit)
        with self._read() as conn:
            return [_object(row) for row in conn.execute(sql, args)]

    def blobs(self) -> set[str]:
        with self._read() as conn:
            found = {row["blob"] for row in conn.execute("SELECT blob FROM objects")}
            found.update(row["blob"] for row in conn.execute("SELECT blob FROM parts"))
        return found

    # -- multipart uploads -------------------------------------------------------------

    def create_upload(self, upload: UploadRow) -> bool:
        with self._write() as conn:
            if (
                conn.execute("SELECT 1 FROM buckets WHERE name = ?", (upload.bucket,)).fetchone()
                is None
            ):
                return False
            conn.execute(
                "INSERT INTO uploads (id, bucket, key, created, content_type, meta) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    upload.id,
                    upload.bucket,
                    upload.key,
                    upload.created,
                    upload.content_type,
                    _json(object_meta(upload.metadata, upload.headers, checksum=upload.checksum)),
                ),
            )
            return True

    def upload(self, upload_id: str) -> UploadRow | None:
        with self._read() as conn:
            row = conn.execute("SELECT * FROM uploads WHERE id = ?", (upload_id,)).fetchone()
        if row is None:
            return None
        meta = json.loads(row["meta"])
        return UploadRow(
            id=row["id"],
            bucket=row["bucket"],
            key=row["key"],
            created=row["created"],
            content_type=row["content_type"],
            metadata=meta.get("metadata", {}),
            headers=meta.get("headers", {}),
            checksum=Checksum.from_json(meta.get("checksum")),
        )

    def uploads(self, bucket: str) -> list[UploadRow]:
        with self._read() as conn:
            ids = [
                row["id"]
                for row in conn.execute(
                    "SELECT id FROM uploads WHERE bucket = ? ORDER BY key, created", (bucket,)
                )
            ]
        return [row for row in map(self.upload, ids) if row is not None]

    def put_part(self, upload_id: str, part: PartRow) -> tuple[bool, str | None]:
        """(upload exists, blob of the part replaced)."""
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM uploads WHERE id = ?", (upload_id,)).fetchone() is None:
                return False, None
            old = conn.execute(
                "SELECT blob FROM parts WHERE upload = ? AND number = ?", (upload_id, part.number)
            ).fetchone()
            conn.execute(
                "INSERT OR REPLACE INTO parts (upload, number, blob, size, etag, modified, meta) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (upload_id, part.number, part.blob, part.size, part.etag, part.modified,
                 _part_meta(part)),
            )  # fmt: skip
            return True, (old["blob"] if old else None)

    def parts(self, upload_id: str) -> list[PartRow]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT * FROM parts WHERE upload = ? ORDER BY number", (upload_id,)
            ).fetchall()
        return [_part(row) for row in rows]

    def finish_upload(
        self,
        upload_id: str,
        row: ObjectRow | None,
        notify: Notify | None,
        condition: WriteCondition | None = None,
    ) -> tuple[list[str], list[int]] | None:
        """Remove the upload (storing ``row`` when completing); returns the blobs no longer
        needed and the outbox rows, or None when the upload does not exist."""
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM uploads WHERE id = ?", (upload_id,)).fetchone() is None:
                return None
            blobs = [
                r["blob"]
                for r in conn.execute("SELECT blob FROM parts WHERE upload = ?", (upload_id,))
            ]
            conn.execute("DELETE FROM parts WHERE upload = ?", (upload_id,))
            conn.execute("DELETE FROM uploads WHERE id = ?", (upload_id,))
            seqs: list[int] = []
            if row is not None:
                old = _replace_object(conn, row, condition)
                if old is not None:
                    blobs.append(old)
                seqs = self._notify(conn, notify, 1)
            return blobs, seqs

    # -- outbox ------------------------------------------------------------------------

    def outbox(self, seqs: Sequence[int] | None = None) -> list[tuple[int, str, bytes]]:
        with self._read() as conn:
            if seqs is None:
                rows = conn.execute("SELECT seq, topic, event FROM outbox ORDER BY seq")
            else:
                marks = ",".join("?" * len(seqs))
                rows = conn.execute(
                    f"SELECT seq, topic, event FROM outbox WHERE seq IN ({marks}) ORDER BY seq",
                    list(seqs),
                )
            return [(row["seq"], row["topic"], bytes(row["event"])) for row in rows]

    def sent(self, seqs: Sequence[int]) -> None:
        if not seqs:
            return
        with self._write() as conn:
            conn.executemany("DELETE FROM outbox WHERE seq = ?", [(seq,) for seq in seqs])


class SqliteIndex:
    """The ``Index`` of one node: ``_IndexFile``, each call in a worker thread."""

    def __init__(self, file: _IndexFile) -> None:
        self._file = file

    @classmethod
    async def open(cls, path: Path) -> SqliteIndex:
        return cls(await asyncio.to_thread(_IndexFile, path))

    async def close(self) -> None:
        await asyncio.to_thread(self._file.close)

    async def buckets(self) -> list[tuple[str, float]]:
        return await asyncio.to_thread(self._file.buckets)

    async def bucket_exists(self, name: str) -> bool:
        return await asyncio.to_thread(self._file.bucket_exists, name)

    async def create_bucket(self, name: str, created: float) -> bool:
        return await asyncio.to_thread(self._file.create_bucket, name, created)

    async def delete_bucket(self, name: str) -> tuple[str, list[str]]:
        return await asyncio.to_thread(self._file.delete_bucket, name)

    async def get(self, bucket: str, key: str) -> ObjectRow | None:
        return await asyncio.to_thread(self._file.get, bucket, key)

    async def put(
        self, row: ObjectRow, notify: Notify | None, condition: WriteCondition | None = None
    ) -> tuple[str | None, list[int]] | None:
        return await asyncio.to_thread(self._file.put, row, notify, condition)

    async def delete(
        self, bucket: str, keys: Sequence[str], notify: Callable[[list[str]], Notify]
    ) -> tuple[list[str], list[str], list[int]] | None:
        return await asyncio.to_thread(self._file.delete, bucket, keys, notify)

    async def scan(
        self, bucket: str, start: str, upper: str | None, limit: int, *, inclusive: bool = False
    ) -> list[ObjectRow]:
        return await asyncio.to_thread(
            self._file.scan, bucket, start, upper, limit, inclusive=inclusive
        )

    async def blobs(self) -> set[str]:
        return await asyncio.to_thread(self._file.blobs)

    async def create_upload(self, upload: UploadRow) -> bool:
        return await asyncio.to_thread(self._file.create_upload, upload)

    async def upload(self, upload_id: str) -> UploadRow | None:
        return await asyncio.to_thread(self._file.upload, upload_id)

    async def uploads(self, bucket: str) -> list[UploadRow]:
        return await asyncio.to_thread(self._file.uploads, bucket)

    async def put_part(self, upload_id: str, part: PartRow) -> tuple[bool, str | None]:
        return await asyncio.to_thread(self._file.put_part, upload_id, part)

    async def parts(self, upload_id: str) -> list[PartRow]:
        return await asyncio.to_thread(self._file.parts, upload_id)

    async def finish_upload(
        self,
        upload_id: str,
        row: ObjectRow | None,
        notify: Notify | None,
        condition: WriteCondition | None = None,
    ) -> tuple[list[str], list[int]] | None:
        return await asyncio.to_thread(self._file.finish_upload, upload_id, row, notify, condition)

    async def drain(self, seqs: Sequence[int] | None, publish: Publish) -> None:
        # One process owns this file, so reading the rows and forgetting them after
        # the publish need not be one transaction.
        if seqs is not None and not seqs:
            return
        rows = await asyncio.to_thread(self._file.outbox, seqs)
        by_topic: dict[str, list[tuple[int, bytes]]] = {}
        for seq, topic, event in rows:
            by_topic.setdefault(topic, []).append((seq, event))
        for topic, items in by_topic.items():
            await publish(topic, [event for _seq, event in items])
            await asyncio.to_thread(self._file.sent, [seq for seq, _event in items])
