"""Buckets on a cluster: two ``BucketStore`` instances (two nodes) on one PostgreSQL
database see the same objects, share multipart uploads, publish a crashed node's
notifications once, and stream large objects chunk by chunk."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
import sqlalchemy as sa

from support.buckets import BucketBackend, read_all
from triggerfish.bus.base import PublishResult
from triggerfish.bus.memory import MemoryBus
from triggerfish.events.model import Event, encode_event
from triggerfish.sources.buckets import Actor, BucketStore, NewObject
from triggerfish.sources.buckets.notifications import Change, change_event
from triggerfish.sources.buckets.postgres_blobs import CHUNK, PostgresBlobs
from triggerfish.store import schema as t

ACTOR = Actor(principal="TFTEST", source_ip="10.0.0.1", request_id="R1")
MB = 1024 * 1024


class CountingBus(MemoryBus):
    """A memory bus that remembers every event id it was asked to publish, duplicates
    included (the memory bus itself drops them)."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []

    async def publish(
        self, topic: str, events: Sequence[Event], *, dedupe: bool = True
    ) -> list[PublishResult]:
        self.asked += [event.id for event in events]
        return await super().publish(topic, events, dedupe=dedupe)


@pytest.fixture
async def nodes(
    tmp_path: Path, bus: MemoryBus, postgresql_backend: BucketBackend
) -> AsyncIterator[tuple[BucketStore, BucketStore]]:
    one = postgresql_backend.bucket_store(tmp_path / "node1", bus)
    two = postgresql_backend.bucket_store(tmp_path / "node2", bus)
    await one.start()
    await two.start()
    yield one, two
    await two.stop()
    await one.stop()


async def put(store: BucketStore, bucket: str, key: str, data: bytes, new: NewObject) -> str:
    writer = store.writer()
    writer.write(data)
    return (await store.put_object(bucket, key, writer, new, actor=ACTOR)).etag


async def read(store: BucketStore, bucket: str, key: str) -> bytes:
    _row, handle = await store.open_object(bucket, key)
    return await read_all(handle)


async def test_an_object_written_on_one_node_is_read_on_the_other(
    nodes: tuple[BucketStore, BucketStore],
) -> None:
    one, two = nodes
    await one.create_bucket("photos")
    new = NewObject("image/jpeg", {"camera": "x100"}, {"cache-control": "no-cache"})
    etag = await put(one, "photos", "b/my cat.jpg", b"meow", new)
    await put(one, "photos", "a.jpg", b"purr", NewObject())

    assert await two.list_buckets() == await one.list_buckets()
    row = await two.head_object("photos", "b/my cat.jpg")
    assert (row.etag, row.size, row.content_type) == (etag, 4, "image/jpeg")
    assert row.metadata == {"camera": "x100"}
    assert row.headers == {"cache-control": "no-cache"}
    assert await read(two, "photos", "b/my cat.jpg") == b"meow"
    listing = await two.list_objects("photos", delimiter="/")
    assert [r.key for r in listing.objects] == ["a.jpg"]
    assert listing.prefixes == ["b/"]

    # A deletion through the second node is seen by the first.
    await two.delete_objects("photos", ["a.jpg"], actor=ACTOR)
    assert [r.key for r in (await one.list_objects("photos")).objects] == ["b/my cat.jpg"]


async def test_keys_list_in_byte_order(nodes: tuple[BucketStore, BucketStore]) -> None:
    one, two = nodes
    await one.create_bucket("tree")
    keys = ["B", "a", "a-b", "a.b", "aB", "é", "z"]
    for key in keys:
        await put(one, "tree", key, b".", NewObject())
    listed = [row.key for row in (await two.list_objects("tree")).objects]
    assert listed == sorted(keys, key=lambda key: key.encode())


async def test_a_multipart_upload_started_on_one_node_completes_on_the_other(
    nodes: tuple[BucketStore, BucketStore], bus: MemoryBus
) -> None:
    one, two = nodes
    await one.create_bucket("big")
    parts = [os.urandom(5 * MB), b"tail"]
    upload = await one.create_upload("big", "f.bin", NewObject("application/x-test"))
    chosen = []
    for number, (node, data) in enumerate(zip((one, two), parts, strict=True), start=1):
        writer = node.writer()
        writer.write(data)
        part = await node.put_part("big", "f.bin", upload, number, writer)
        chosen.append((number, part.etag))
    assert [p.number for p in await two.list_parts("big", "f.bin", upload)] == [1, 2]
    assert [u.id for u in await one.list_uploads("big")] == [upload]

    row = await two.complete_upload("big", "f.bin", upload, chosen, actor=ACTOR)
    digest = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()
    assert row.etag == f"{digest}-2"
    assert await read(one, "big", "f.bin") == b"".join(parts)
    assert await one.list_uploads("big") == []
    [item] = await bus.read("_bucket.big", limit=10)
    assert item.event.type == "com.amazonaws.s3.ObjectCreated:CompleteMultipartUpload"


async def test_a_crashed_nodes_notification_is_published_once_by_the_next_to_start(
    tmp_path: Path, postgresql_backend: BucketBackend
) -> None:
    bus = CountingBus()
    await bus.start()
    try:
        first = postgresql_backend.bucket_store(tmp_path / "node1", bus)
        await first.start()
        await first.create_bucket("photos")
        await first.stop()
        # As if a node died after committing a change but before publishing it.
        change = Change("ObjectCreated:Put", "photos", "late.jpg", 1, "e" * 32, 1.0)
        event = change_event(change, 99, region="us-east-1", actor=ACTOR)
        assert postgresql_backend.store is not None
        async with postgresql_backend.store._write() as conn:
            await conn.execute(
                t.bucket_outbox.insert().values(topic="_bucket.photos", event=encode_event(event))
            )

        # Two nodes start at once; one of them publishes the row, and only one.
        starting = [postgresql_backend.bucket_store(tmp_path / f"node{n}", bus) for n in (2, 3)]
        await asyncio.gather(*(node.start() for node in starting))
        try:
            assert bus.asked == [event.id]
            [found] = await bus.read("_bucket.photos", limit=10)
            assert found.event.subject == "late.jpg"
            async with postgresql_backend.store._read() as conn:
                left = await conn.scalar(sa.select(sa.func.count()).select_from(t.bucket_outbox))
            assert left == 0
        finally:
            await asyncio.gather(*(node.stop() for node in starting))
    finally:
        await bus.stop()


async def test_a_large_object_is_stored_and_streamed_in_chunks(
    nodes: tuple[BucketStore, BucketStore], postgresql_backend: BucketBackend
) -> None:
    one, two = nodes
    await one.create_bucket("big")
    data = os.urandom(20 * MB + 123)
    etag = await put(one, "big", "video.bin", data, NewObject())
    assert etag == hashlib.md5(data).hexdigest()

    assert postgresql_backend.store is not None
    async with postgresql_backend.store._read() as conn:
        chunks = await conn.scalar(sa.select(sa.func.count()).select_from(t.bucket_blobs))
    assert chunks == -(-len(data) // CHUNK)

    row, handle = await two.open_object("big", "video.bin")
    pieces = [piece async for piece in handle.stream(0, row.size)]
    await handle.aclose()
    assert max(len(piece) for piece in pieces) <= CHUNK
    assert len(pieces) >= 20
    assert b"".join(pieces) == data

    # A range across a chunk boundary.
    _row, handle = await two.open_object("big", "video.bin")
    first = 3 * CHUNK - 10
    middle = b"".join([piece async for piece in handle.stream(first, 30)])
    await handle.aclose()
    assert middle == data[first : first + 30]


async def test_replaced_bytes_are_collected_after_the_grace_period(
    tmp_path: Path, nodes: tuple[BucketStore, BucketStore], postgresql_backend: BucketBackend
) -> None:
    one, two = nodes
    await one.create_bucket("docs")
    await put(one, "docs", "a.txt", b"one", NewObject())
    await put(two, "docs", "a.txt", b"two", NewObject())
    await put(two, "docs", "b.txt", b"bee", NewObject())
    await one.delete_objects("docs", ["b.txt"], actor=ACTOR)
    assert await postgresql_backend.live_blobs(one) == 1

    read_tx, write_tx = postgresql_backend.transactions
    patient = PostgresBlobs(tmp_path / "sweeper", read_tx, write_tx)
    assert await patient.sweep() == 0  # still within the grace period
    eager = PostgresBlobs(tmp_path / "sweeper", read_tx, write_tx, grace=0.0)
    assert await eager.sweep() == 2
    async with read_tx() as conn:
        stored = await conn.scalar(sa.select(sa.func.count()).select_from(t.bucket_blobs))
    assert stored == 1
    assert await read(one, "docs", "a.txt") == b"two"
