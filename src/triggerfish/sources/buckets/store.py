"""The built-in object store: buckets of objects, whose changes are events.

Where they live: on one node, an SQLite index and blob files in the data directory
(``SqliteIndex``, ``FileBlobs``); on a cluster (``database`` given: the transactions
of the shared PostgreSQL store), the index and the bytes in that database
(``PostgresIndex``, ``PostgresBlobs``), so every node serves every object. Either way:

Promises:
- A write is atomic: readers see the old object or the new one, never part of one,
  and a crash mid-upload leaves no partial object (see ``blobs``).
- A change is acknowledged only once its notification is durable: the object's index
  row and the notification are committed together, then published to the bucket's
  topic (``_bucket.<name>``) before the call returns. Notifications a crash left
  unpublished are published at the next start (of any node, on a cluster), once.
- ETags are what S3 computes: the MD5 of the bytes, or for a multipart upload the MD5
  of the parts' binary MD5s followed by ``-<number of parts>``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from triggerfish.bus.base import Bus
from triggerfish.errors import NotFoundError
from triggerfish.events.model import decode_event, encode_event
from triggerfish.functions.triggers import bucket_topic
from triggerfish.sources.buckets.blobs import BlobReader, Blobs, BlobWriter, FileBlobs
from triggerfish.sources.buckets.checksums import DEFAULT as DEFAULT_CHECKSUM
from triggerfish.sources.buckets.checksums import FULL_OBJECT, Checksum, Hasher, multipart
from triggerfish.sources.buckets.conditions import WriteCondition
from triggerfish.sources.buckets.errors import (
    BucketExistsError,
    BucketNotEmptyError,
    InvalidObjectError,
    NoSuchBucketError,
    NoSuchKeyError,
    NoSuchUploadError,
)
from triggerfish.sources.buckets.index import Index, Notify, ObjectRow, PartRow, UploadRow
from triggerfish.sources.buckets.names import check_bucket_name, check_key
from triggerfish.sources.buckets.notifications import Actor, Change, change_event
from triggerfish.sources.buckets.postgres_blobs import PostgresBlobs
from triggerfish.sources.buckets.postgres_index import PostgresIndex
from triggerfish.sources.buckets.sqlite_index import SqliteIndex
from triggerfish.store.documents import Transaction

log = logging.getLogger("triggerfish.buckets")

MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PARTS = 10000


@dataclass(frozen=True, slots=True)
class Listing:
    objects: list[ObjectRow]
    prefixes: list[str]
    truncated: bool
    last: str  # the last key or common prefix returned: where the next page starts


@dataclass(frozen=True, slots=True)
class NewObject:
    """What a writer says about an object besides its bytes."""

    content_type: str = "binary/octet-stream"
    metadata: dict[str, str] | None = None
    headers: dict[str, str] | None = None
    checksum: Checksum | None = None  # of the bytes; for an upload, its algorithm and type


def _successor(prefix: str) -> str:
    """The smallest string above every string that starts with ``prefix``."""
    for index in range(len(prefix) - 1, -1, -1):
        if ord(prefix[index]) < 0x10FFFF:
            return prefix[:index] + chr(ord(prefix[index]) + 1)
    return "\U0010ffff" * 2


class BucketStore:
    def __init__(
        self,
        root: Path,
        bus: Bus,
        *,
        database: tuple[Transaction, Transaction] | None = None,
        region: str = "us-east-1",
        retention: float | None = None,
        create_exists_ok: bool = True,
    ) -> None:
        """``root``: the node's folder (the whole store on one node; uploads in
        progress on a cluster). ``database``: the read and write transactions of the
        shared store, to keep the buckets there. ``create_exists_ok``: creating a
        bucket one already has succeeds (S3's behaviour in us-east-1) instead of
        answering BucketAlreadyOwnedByYou."""
        self.root = root
        self.region = region
        self._bus = bus
        self._retention = retention
        self._create_exists_ok = create_exists_ok
        self._database = database
        self._blobs: Blobs
        self._shared_blobs: PostgresBlobs | None = None
        if database is None:
            self._blobs = FileBlobs(root)
        else:
            self._blobs = self._shared_blobs = PostgresBlobs(root, *database)
        self._index: Index | None = None

    @property
    def index(self) -> Index:
        assert self._index is not None, "BucketStore.start() was not called"
        return self._index

    async def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self._database is None or self._shared_blobs is None:
            self._index = await SqliteIndex.open(self.root / "index.db")
        else:
            self._index = PostgresIndex(*self._database, self._shared_blobs)
        removed = await self._blobs.prepare(self.index.blobs)
        if removed:
            log.info("removed %d blob(s) left by an interrupted write", removed)
        for name, _created in await self.index.buckets():
            await self._ensure_topic(name)
        await self._flush(None)

    async def stop(self) -> None:
        if self._index is not None:
            await self._index.close()
            self._index = None

    # -- notifications -------------------------------------------------------------------

    async def _ensure_topic(self, bucket: str) -> None:
        topic = bucket_topic(bucket)
        try:
            await self._bus.topic(topic)
        except NotFoundError:
            await self._bus.create_topic(topic, retention=self._retention)

    def _notify(self, changes: Sequence[Change], actor: Actor) -> Notify:
        def rows(first: int) -> list[tuple[str, bytes]]:
            return [
                (
                    bucket_topic(change.bucket),
                    encode_event(change_event(change, first + n, region=self.region, actor=actor)),
                )
                for n, change in enumerate(changes)
            ]

        return rows

    async def _flush(self, seqs: Sequence[int] | None) -> None:
        """Publish outbox rows (these, or all of them), then forget them."""
        await self.index.drain(seqs, self._publish)

    async def _publish(self, topic: str, encoded: list[bytes]) -> None:
        events = [decode_event(blob) for blob in encoded]
        try:
            await self._bus.publish(topic, events)
        except NotFoundError:
            await self._bus.create_topic(topic, retention=self._retention)
            await self._bus.publish(topic, events)

    # -- buckets -------------------------------------------------------------------------

    async def create_bucket(self, name: str) -> bool:
        """True when created; False when it existed (and ``create_exists_ok``)."""
        check_bucket_name(name)
        created = await self.index.create_bucket(name, time.time())
        if not created and not self._create_exists_ok:
            raise BucketExistsError(
                "Your previous request to create the named bucket succeeded and you already own it."
            )
        await self._ensure_topic(name)
        return created

    async def delete_bucket(self, name: str) -> None:
        outcome, blobs = await self.index.delete_bucket(name)
        if outcome == "missing":
            raise NoSuchBucketError("The specified bucket does not exist")
        if outcome == "not-empty":
            raise BucketNotEmptyError("The bucket you tried to delete is not empty")
        await self._blobs.remove(blobs)

    async def bucket_exists(self, name: str) -> bool:
        return await self.index.bucket_exists(name)

    async def check_bucket(self, name: str) -> None:
        if not await self.bucket_exists(name):
            raise NoSuchBucketError("The specified bucket does not exist")

    async def list_buckets(self) -> list[tuple[str, float]]:
        return await self.index.buckets()

    # -- objects -------------------------------------------------------------------------

    def writer(self) -> BlobWriter:
        """Where the bytes of a new object or part go before ``put_object``/``put_part``."""
        return self._blobs.writer()

    async def discard(self, writer: BlobWriter) -> None:
        await asyncio.to_thread(writer.discard)

    async def put_object(
        self,
        bucket: str,
        key: str,
        writer: BlobWriter,
        new: NewObject,
        *,
        actor: Actor,
        event_name: str = "ObjectCreated:Put",
        condition: WriteCondition | None = None,
    ) -> ObjectRow:
        """Make the written bytes object ``key`` (if ``condition`` holds for the key's
        current object, checked atomically with the write); ``writer`` is consumed
        either way."""
        try:
            check_key(key)
            blob = await self._blobs.seal(writer)
        except BaseException:
            await asyncio.to_thread(writer.discard)
            raise
        row = ObjectRow(
            bucket=bucket,
            key=key,
            blob=blob,
            size=writer.size,
            etag=writer.md5.hex(),
            modified=time.time(),
            content_type=new.content_type,
            metadata=dict(new.metadata or {}),
            headers=dict(new.headers or {}),
            checksum=new.checksum,
        )
        change = Change(event_name, bucket, key, row.size, row.etag, row.modified)
        try:
            done = await self.index.put(row, self._notify([change], actor), condition)
        except BaseException:
            await self._blobs.remove([blob])
            raise
        if done is None:
            await self._blobs.remove([blob])
            raise NoSuchBucketError("The specified bucket does not exist")
        old, seqs = done
        if old is not None:
            await self._blobs.remove([old])
        await self._flush(seqs)
        return row

    async def check_condition(self, bucket: str, key: str, condition: WriteCondition) -> None:
        """Raise when ``condition`` does not hold now: a refusal before the bytes are
        sent. ``put_object`` checks it again, atomically with the write."""
        row = await self.index.get(bucket, key)
        condition.check(None if row is None else row.etag)

    async def head_object(self, bucket: str, key: str) -> ObjectRow:
        row = await self.index.get(bucket, key)
        if row is None:
            await self.check_bucket(bucket)
            raise NoSuchKeyError("The specified key does not exist.")
        return row

    async def open_object(self, bucket: str, key: str) -> tuple[ObjectRow, BlobReader]:
        """The object and its bytes, open: a later replacement does not change them."""
        for _attempt in range(5):
            row = await self.head_object(bucket, key)
            try:
                return row, await self._blobs.open(row.blob)
            except FileNotFoundError:
                continue  # replaced between the lookup and the open: look again
        raise NoSuchKeyError("The specified key does not exist.")

    async def delete_objects(self, bucket: str, keys: Sequence[str], *, actor: Actor) -> list[str]:
        """Delete the keys that exist (S3 reports the others as deleted too); returns
        the keys that were removed."""

        def notify(removed: list[str]) -> Notify:
            now = time.time()
            changes = [Change("ObjectRemoved:Delete", bucket, key, modified=now) for key in removed]
            return self._notify(changes, actor)

        done = await self.index.delete(bucket, list(keys), notify)
        if done is None:
            raise NoSuchBucketError("The specified bucket does not exist")
        removed, blobs, seqs = done
        await self._blobs.remove(blobs)
        await self._flush(seqs)
        return removed

    async def copy_object(
        self,
        source: tuple[str, str],
        bucket: str,
        key: str,
        new: NewObject | None,
        *,
        actor: Actor,
        source_check: Callable[[ObjectRow], None] | None = None,
        condition: WriteCondition | None = None,
        checksum: str | None = None,
    ) -> ObjectRow:
        """Copy ``source`` (bucket, key) to ``key``, with its metadata or ``new``'s.
        ``source_check`` may refuse the source object (S3's ``x-amz-copy-source-if-*``);
        ``condition`` is that of ``put_object``. The copy keeps the source's checksum
        when it is of the whole object and of the algorithm ``checksum`` names (the
        source's own by default); otherwise it is computed as the bytes are copied."""
        await self.check_bucket(bucket)
        if new is None and source == (bucket, key):
            raise InvalidObjectError(
                "InvalidRequest",
                "This copy request is illegal because it is trying to copy an object to itself "
                "without changing the object's metadata, storage class, website redirect "
                "location or encryption attributes.",
            )
        row, handle = await self.open_object(*source)
        if source_check is not None:
            try:
                source_check(row)
            except BaseException:
                await handle.aclose()
                raise
        kept = row.checksum
        algorithm = checksum or (kept.algorithm if kept else DEFAULT_CHECKSUM)
        if kept is not None and (kept.algorithm != algorithm or kept.type != FULL_OBJECT):
            kept = None
        hasher = Hasher(algorithm) if kept is None else None
        writer = self.writer()
        try:
            await _copy(handle, writer, hasher)
        except BaseException:
            await asyncio.to_thread(writer.discard)
            raise
        finally:
            await handle.aclose()
        if new is None:
            new = NewObject(row.content_type, row.metadata, row.headers)
        new = replace(new, checksum=hasher.checksum() if hasher else kept)
        return await self.put_object(
            bucket,
            key,
            writer,
            new,
            actor=actor,
            event_name="ObjectCreated:Copy",
            condition=condition,
        )

    async def list_objects(
        self,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        after: str = "",
        max_keys: int = 1000,
    ) -> Listing:
        """Keys after ``after`` under ``prefix``; with a delimiter, keys sharing the part
        up to it are rolled into one common prefix. Both count towards ``max_keys``."""
        await self.check_bucket(bucket)
        upper = _successor(prefix) if prefix else None
        start, inclusive = (after, False) if after >= prefix else (prefix, True)
        objects: list[ObjectRow] = []
        prefixes: list[str] = []
        last = after
        while True:
            batch = await self.index.scan(bucket, start, upper, 1000, inclusive=inclusive)
            if not batch:
                return Listing(objects, prefixes, False, last)
            start, inclusive = batch[-1].key, False
            for row in batch:
                common = None
                if delimiter:
                    cut = row.key.find(delimiter, len(prefix))
                    if cut >= 0:
                        common = row.key[: cut + len(delimiter)]
                if common is not None and common <= after:
                    # A common prefix that an earlier page returned: jump over it.
                    start, inclusive = _successor(common), True
                    break
                if len(objects) + len(prefixes) >= max_keys:
                    return Listing(objects, prefixes, True, last)
                if common is not None:
                    prefixes.append(common)
                    last = common
                    # Jump over the rest of this common prefix.
                    start, inclusive = _successor(common), True
                    break
                objects.append(row)
                last = row.key

    # -- multipart uploads ---------------------------------------------------------------

    async def create_upload(self, bucket: str, key: str, new: NewObject) -> str:
        check_key(key)
        upload = UploadRow(
            id=secrets.token_urlsafe(32),
            bucket=bucket,
            key=key,
            created=time.time(),
            content_type=new.content_type,
            metadata=dict(new.metadata or {}),
            headers=dict(new.headers or {}),
            checksum=new.checksum,
        )
        if not await self.index.create_upload(upload):
            raise NoSuchBucketError("The specified bucket does not exist")
        return upload.id

    async def _upload(self, bucket: str, key: str, upload_id: str) -> UploadRow:
        upload = await self.index.upload(upload_id)
        if upload is None or upload.bucket != bucket or upload.key != key:
            await self.check_bucket(bucket)
            raise NoSuchUploadError(
                "The specified upload does not exist. The upload ID may be invalid, or the "
                "upload may have been aborted or completed."
            )
        return upload

    async def upload(self, bucket: str, key: str, upload_id: str) -> UploadRow:
        """The upload in progress; NoSuchUpload when there is none of that key."""
        return await self._upload(bucket, key, upload_id)

    async def put_part(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        number: int,
        writer: BlobWriter,
        *,
        checksum: Checksum | None = None,
    ) -> PartRow:
        try:
            if not 1 <= number <= MAX_PARTS:
                raise InvalidObjectError(
                    "InvalidArgument", f"Part number must be an integer between 1 and {MAX_PARTS}"
                )
            await self._upload(bucket, key, upload_id)
            blob = await self._blobs.seal(writer)
        except BaseException:
            await asyncio.to_thread(writer.discard)
            raise
        part = PartRow(number, blob, writer.size, writer.md5.hex(), time.time(), checksum)
        try:
            found, old = await self.index.put_part(upload_id, part)
        except BaseException:
            await self._blobs.remove([blob])
            raise
        if not found:
            await self._blobs.remove([blob])
            raise NoSuchUploadError("The specified upload does not exist.")
        if old is not None:
            await self._blobs.remove([old])
        return part

    async def list_parts(self, bucket: str, key: str, upload_id: str) -> list[PartRow]:
        await self._upload(bucket, key, upload_id)
        return await self.index.parts(upload_id)

    async def list_uploads(self, bucket: str) -> list[UploadRow]:
        await self.check_bucket(bucket)
        return await self.index.uploads(bucket)

    async def abort_upload(self, bucket: str, key: str, upload_id: str) -> None:
        await self._upload(bucket, key, upload_id)
        done = await self.index.finish_upload(upload_id, None, None)
        if done is not None:
            await self._blobs.remove(done[0])

    async def complete_upload(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        chosen: Sequence[tuple[int, str]],
        *,
        actor: Actor,
        condition: WriteCondition | None = None,
        part_checksums: Mapping[int, str] | None = None,
        full_checksum: str | None = None,
    ) -> ObjectRow:
        """Join the chosen parts ((number, etag) in ascending order) into the object
        (if ``condition`` holds, as for ``put_object``). Completing an upload again
        answers the object it made, as S3 does, while that object is still the key's.
        ``part_checksums`` (by part number) and ``full_checksum`` are what the client
        says the parts' and the object's checksums are: checked before anything is
        joined."""
        try:
            upload = await self._upload(bucket, key, upload_id)
        except NoSuchUploadError:
            return await self._completed(bucket, key, upload_id)
        stored = {part.number: part for part in await self.index.parts(upload_id)}
        if not chosen:
            raise InvalidObjectError(
                "MalformedXML", "You must specify at least one part to complete an upload"
            )
        parts: list[PartRow] = []
        for number, etag in chosen:
            part = stored.get(number)
            if part is None or part.etag != etag.strip('"').lower():
                raise InvalidObjectError(
                    "InvalidPart",
                    "One or more of the specified parts could not be found. The part may not "
                    "have been uploaded, or the specified entity tag may not match the part's "
                    "entity tag.",
                )
            if parts and number <= parts[-1].number:
                raise InvalidObjectError(
                    "InvalidPartOrder", "The list of parts was not in ascending order."
                )
            parts.append(part)
        if any(part.size < MIN_PART_SIZE for part in parts[:-1]):
            raise InvalidObjectError(
                "EntityTooSmall",
                "Your proposed upload is smaller than the minimum allowed object size: every "
                "part but the last must be at least 5 MB.",
            )
        checksum = _joined_checksum(upload, parts, part_checksums or {}, full_checksum)
        writer = self.writer()
        try:
            await self._join(parts, writer)
            blob = await self._blobs.seal(writer)
        except BaseException:
            await asyncio.to_thread(writer.discard)
            raise
        digest = hashlib.md5(usedforsecurity=False)
        for part in parts:
            digest.update(bytes.fromhex(part.etag))
        row = ObjectRow(
            bucket=bucket,
            key=key,
            blob=blob,
            size=writer.size,
            etag=f"{digest.hexdigest()}-{len(parts)}",
            modified=time.time(),
            content_type=upload.content_type,
            metadata=upload.metadata,
            headers=upload.headers,
            upload=upload_id,
            parts=tuple(part.size for part in parts),
            checksum=checksum,
        )
        change = Change(
            "ObjectCreated:CompleteMultipartUpload", bucket, key, row.size, row.etag, row.modified
        )
        try:
            done = await self.index.finish_upload(
                upload_id, row, self._notify([change], actor), condition
            )
        except BaseException:
            await self._blobs.remove([blob])
            raise
        if done is None:
            await self._blobs.remove([blob])
            return await self._completed(bucket, key, upload_id)
        blobs, seqs = done
        await self._blobs.remove(blobs)
        await self._flush(seqs)
        return row

    async def _completed(self, bucket: str, key: str, upload_id: str) -> ObjectRow:
        """The object that completing ``upload_id`` made, while it is still the key's."""
        row = await self.index.get(bucket, key)
        if row is None or row.upload != upload_id:
            raise NoSuchUploadError(
                "The specified upload does not exist. The upload ID may be invalid, or the "
                "upload may have been aborted or completed."
            )
        return row

    async def _join(self, parts: list[PartRow], writer: BlobWriter) -> None:
        for part in parts:
            handle = await self._blobs.open(part.blob)
            try:
                await _copy(handle, writer)
            finally:
                await handle.aclose()


def _joined_checksum(
    upload: UploadRow, parts: Sequence[PartRow], given: Mapping[int, str], full: str | None
) -> Checksum | None:
    """The checksum of the object the parts make, of the upload's algorithm and type
    (a full-object CRC64NVME for an upload that chose none); None when a part has none
    of that algorithm (a part stored before parts kept checksums)."""
    for part in parts:
        wanted = given.get(part.number)
        if wanted is not None and (part.checksum is None or part.checksum.value != wanted.strip()):
            raise InvalidObjectError(
                "InvalidPart",
                "One or more of the specified parts could not be found. The part may not have "
                "been uploaded, or the specified checksum value may not match the part's "
                "checksum value.",
            )
    chosen = upload.checksum or Checksum(DEFAULT_CHECKSUM)
    pieces = []
    for part in parts:
        if part.checksum is None or part.checksum.algorithm != chosen.algorithm:
            return None
        pieces.append((part.checksum, part.size))
    checksum = multipart(chosen.algorithm, chosen.type, pieces)
    if full is not None and full.strip() != checksum.value:
        raise InvalidObjectError(
            "BadDigest",
            f"The {chosen.algorithm} you specified did not match the calculated checksum.",
        )
    return checksum


async def _copy(handle: BlobReader, writer: BlobWriter, hasher: Hasher | None = None) -> None:
    async for data in handle.stream():
        await asyncio.to_thread(writer.write, data)
        if hasher is not None:
            hasher.update(data)
