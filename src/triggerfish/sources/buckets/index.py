"""The object index: which buckets exist, which blob holds each object, the multipart
uploads and their parts, and the outbox of notifications.

``Index`` is what ``BucketStore`` asks of an index. Two keep its promises:
``SqliteIndex`` (a file in the node's data directory: one node) and ``PostgresIndex``
(tables of the shared store: every node of a cluster).

Promises of both:
- Each method is one transaction. A change of an object and the notification it causes
  are committed together (the outbox), so a crash between the two leaves the
  notification to be published later, never lost.
- Keys compare as UTF-8 bytes, which is S3's listing order.
- The sequencers handed to ``Notify`` increase with every change the index stores and
  are never handed out twice.
- ``drain`` publishes an outbox row, then forgets it; a row that two callers could both
  see is published by one of them only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from triggerfish.sources.buckets.checksums import Checksum
from triggerfish.sources.buckets.conditions import WriteCondition


@dataclass(frozen=True, slots=True)
class ObjectRow:
    bucket: str
    key: str
    blob: str
    size: int
    etag: str  # without quotes; "<hex>-<parts>" for multipart objects
    modified: float
    content_type: str
    metadata: dict[str, str] = field(default_factory=dict)  # x-amz-meta-* without the prefix
    headers: dict[str, str] = field(default_factory=dict)  # content-encoding, cache-control ...
    upload: str | None = None  # the multipart upload that made it
    parts: tuple[int, ...] = ()  # the sizes of its parts, for a multipart object
    checksum: Checksum | None = None


@dataclass(frozen=True, slots=True)
class UploadRow:
    id: str
    bucket: str
    key: str
    created: float
    content_type: str
    metadata: dict[str, str]
    headers: dict[str, str]
    checksum: Checksum | None = None  # the algorithm and type chosen, without a value


@dataclass(frozen=True, slots=True)
class PartRow:
    number: int
    blob: str
    size: int
    etag: str
    modified: float
    checksum: Checksum | None = None


#: Makes the outbox rows (topic, encoded event) of a change, given the first sequencer
#: it may use.
Notify = Callable[[int], Sequence[tuple[str, bytes]]]

#: Publishes the encoded events of one topic; ``drain`` forgets them once it returns.
Publish = Callable[[str, list[bytes]], Awaitable[None]]


class Index(Protocol):
    async def close(self) -> None: ...

    # -- buckets -----------------------------------------------------------------------

    async def buckets(self) -> list[tuple[str, float]]:
        """(name, created) of every bucket, by name."""
        ...

    async def bucket_exists(self, name: str) -> bool: ...

    async def create_bucket(self, name: str, created: float) -> bool:
        """False when it existed already."""
        ...

    async def delete_bucket(self, name: str) -> tuple[str, list[str]]:
        """'gone', 'missing' or 'not-empty', and the blobs of aborted uploads to remove."""
        ...

    # -- objects -----------------------------------------------------------------------

    async def get(self, bucket: str, key: str) -> ObjectRow | None: ...

    async def put(
        self, row: ObjectRow, notify: Notify | None, condition: WriteCondition | None = None
    ) -> tuple[str | None, list[int]] | None:
        """Store ``row``; returns the blob it replaced and the outbox rows written, or
        None when the bucket does not exist. ``condition`` is checked against the key's
        current object in the same transaction, its error raised and nothing written
        when it does not hold."""
        ...

    async def delete(
        self, bucket: str, keys: Sequence[str], notify: Callable[[list[str]], Notify]
    ) -> tuple[list[str], list[str], list[int]] | None:
        """Remove the keys that exist; returns (keys removed, their blobs, outbox rows),
        or None when the bucket does not exist."""
        ...

    async def scan(
        self, bucket: str, start: str, upper: str | None, limit: int, *, inclusive: bool = False
    ) -> list[ObjectRow]:
        """Objects with key above ``start`` (or equal, when ``inclusive``) and below
        ``upper``, in key order."""
        ...

    async def blobs(self) -> set[str]:
        """Every blob an object or a part names."""
        ...

    # -- multipart uploads -------------------------------------------------------------

    async def create_upload(self, upload: UploadRow) -> bool:
        """False when the bucket does not exist."""
        ...

    async def upload(self, upload_id: str) -> UploadRow | None: ...

    async def uploads(self, bucket: str) -> list[UploadRow]:
        """The bucket's uploads in progress, by key and then age."""
        ...

    async def put_part(self, upload_id: str, part: PartRow) -> tuple[bool, str | None]:
        """(upload exists, blob of the part replaced)."""
        ...

    async def parts(self, upload_id: str) -> list[PartRow]: ...

    async def finish_upload(
        self,
        upload_id: str,
        row: ObjectRow | None,
        notify: Notify | None,
        condition: WriteCondition | None = None,
    ) -> tuple[list[str], list[int]] | None:
        """Remove the upload (storing ``row`` when completing, if ``condition`` holds, as
        for ``put``); returns the blobs no longer needed and the outbox rows, or None
        when the upload does not exist."""
        ...

    # -- outbox ------------------------------------------------------------------------

    async def drain(self, seqs: Sequence[int] | None, publish: Publish) -> None:
        """Publish the outbox rows ``seqs`` (or every row, oldest first), one call of
        ``publish`` per topic, and forget each topic's rows once it returned."""
        ...


def object_meta(
    metadata: dict[str, str],
    headers: dict[str, str],
    *,
    upload: str | None = None,
    parts: tuple[int, ...] = (),
    checksum: Checksum | None = None,
) -> dict[str, Any]:
    """The ``meta`` document of an object or an upload, as every index keeps it: its
    user metadata and stored headers, the upload it was completed from with its part
    sizes, and its checksum."""
    meta: dict[str, Any] = {"metadata": metadata, "headers": headers}
    if upload is not None:
        meta["upload"], meta["parts"] = upload, list(parts)
    if checksum is not None:
        meta["checksum"] = checksum.to_json()
    return meta
