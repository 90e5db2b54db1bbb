"""The object store: round trips, ETags as S3 computes them, listings, atomicity and
the notifications it publishes."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path
from urllib.parse import unquote_plus

import pytest

from support.buckets import BucketBackend, read_all
from triggerfish.bus.memory import MemoryBus
from triggerfish.events.model import encode_event
from triggerfish.sources.buckets import (
    Actor,
    BucketNotEmptyError,
    BucketStore,
    InvalidBucketNameError,
    InvalidObjectError,
    NewObject,
    NoSuchBucketError,
    NoSuchKeyError,
)
from triggerfish.sources.buckets.notifications import Change, change_event

ACTOR = Actor(principal="TFTEST", source_ip="10.0.0.1", request_id="R1")
MB = 1024 * 1024


async def put(store: BucketStore, bucket: str, key: str, data: bytes) -> str:
    writer = store.writer()
    writer.write(data)
    row = await store.put_object(bucket, key, writer, NewObject("text/plain"), actor=ACTOR)
    return row.etag


async def read(store: BucketStore, bucket: str, key: str) -> bytes:
    _row, handle = await store.open_object(bucket, key)
    return await read_all(handle)


async def events(bus: MemoryBus, bucket: str) -> list[dict[str, object]]:
    return [item.event.to_dict() for item in await bus.read(f"_bucket.{bucket}", limit=1000)]


async def test_put_get_and_the_put_notification(buckets: BucketStore, bus: MemoryBus) -> None:
    await buckets.create_bucket("photos")
    etag = await put(buckets, "photos", "photos/my cat.jpg", b"meow")
    assert etag == hashlib.md5(b"meow").hexdigest()
    assert await read(buckets, "photos", "photos/my cat.jpg") == b"meow"

    [event] = await events(bus, "photos")
    assert event["type"] == "com.amazonaws.s3.ObjectCreated:Put"
    assert event["subject"] == "photos/my cat.jpg"
    assert event["source"] == "s3://photos"
    [record] = event["data"]["Records"]  # type: ignore[index]
    assert record["eventSource"] == "aws:s3"
    assert record["eventVersion"] == "2.1"
    assert record["eventName"] == "ObjectCreated:Put"
    assert record["userIdentity"] == {"principalId": "TFTEST"}
    assert record["s3"]["bucket"]["name"] == "photos"
    assert record["s3"]["bucket"]["arn"] == "arn:aws:s3:::photos"
    assert record["s3"]["object"]["key"] == "photos/my+cat.jpg"
    assert unquote_plus(record["s3"]["object"]["key"]) == "photos/my cat.jpg"
    assert record["s3"]["object"]["size"] == 4
    assert record["s3"]["object"]["eTag"] == etag


async def test_replacing_and_deleting_publish_in_order(
    buckets: BucketStore, bus: MemoryBus, backend: BucketBackend
) -> None:
    await buckets.create_bucket("docs")
    await put(buckets, "docs", "a.txt", b"one")
    await put(buckets, "docs", "a.txt", b"two")
    assert await read(buckets, "docs", "a.txt") == b"two"
    assert await buckets.delete_objects("docs", ["a.txt", "missing"], actor=ACTOR) == ["a.txt"]
    with pytest.raises(NoSuchKeyError):
        await read(buckets, "docs", "a.txt")
    found = await events(bus, "docs")
    names = [e["data"]["Records"][0]["eventName"] for e in found]  # type: ignore[index]
    assert names == ["ObjectCreated:Put", "ObjectCreated:Put", "ObjectRemoved:Delete"]
    sequencers = [e["data"]["Records"][0]["s3"]["object"]["sequencer"] for e in found]  # type: ignore[index]
    assert sequencers == sorted(sequencers)
    assert len(set(sequencers)) == 3
    # No blob is left to a removed object.
    assert await backend.live_blobs(buckets) == 0


async def test_multipart_etag_is_md5_of_part_md5s(buckets: BucketStore, bus: MemoryBus) -> None:
    await buckets.create_bucket("big")
    parts = [os.urandom(5 * MB), os.urandom(5 * MB), b"tail"]
    upload = await buckets.create_upload("big", "f.bin", NewObject("application/x-test"))
    chosen = []
    for number, data in enumerate(parts, start=1):
        writer = buckets.writer()
        writer.write(data)
        part = await buckets.put_part("big", "f.bin", upload, number, writer)
        chosen.append((number, f'"{part.etag}"'))
    row = await buckets.complete_upload("big", "f.bin", upload, chosen, actor=ACTOR)
    digest = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()
    assert row.etag == f"{digest}-3"
    assert row.content_type == "application/x-test"
    assert await read(buckets, "big", "f.bin") == b"".join(parts)
    [event] = await events(bus, "big")
    assert event["type"] == "com.amazonaws.s3.ObjectCreated:CompleteMultipartUpload"


async def test_small_parts_and_wrong_etags_are_refused(
    buckets: BucketStore, backend: BucketBackend
) -> None:
    await buckets.create_bucket("big")
    upload = await buckets.create_upload("big", "f.bin", NewObject())
    chosen = []
    for number in (1, 2):
        writer = buckets.writer()
        writer.write(b"x" * 10)
        part = await buckets.put_part("big", "f.bin", upload, number, writer)
        chosen.append((number, part.etag))
    with pytest.raises(InvalidObjectError) as caught:
        await buckets.complete_upload("big", "f.bin", upload, chosen, actor=ACTOR)
    assert caught.value.code == "EntityTooSmall"
    with pytest.raises(InvalidObjectError) as caught:
        await buckets.complete_upload("big", "f.bin", upload, [(1, "0" * 32)], actor=ACTOR)
    assert caught.value.code == "InvalidPart"
    await buckets.abort_upload("big", "f.bin", upload)
    with pytest.raises(NoSuchKeyError):
        await buckets.head_object("big", "f.bin")
    assert await backend.live_blobs(buckets) == 0


async def test_listing_pages_cover_every_key_once(buckets: BucketStore) -> None:
    await buckets.create_bucket("tree")
    keys = ["a.txt", "b/1", "b/2", "b/3", "c/x/1", "d.txt", "é.txt"]
    for key in keys:
        await put(buckets, "tree", key, b".")
    seen: list[str] = []
    after = ""
    while True:
        page = await buckets.list_objects("tree", delimiter="/", after=after, max_keys=2)
        seen += sorted([row.key for row in page.objects] + page.prefixes)
        if not page.truncated:
            break
        after = page.last
    assert seen == ["a.txt", "b/", "c/", "d.txt", "é.txt"]
    under_b = await buckets.list_objects("tree", prefix="b/", max_keys=1000)
    assert [row.key for row in under_b.objects] == ["b/1", "b/2", "b/3"]


async def test_bucket_rules(buckets: BucketStore) -> None:
    with pytest.raises(InvalidBucketNameError):
        await buckets.create_bucket("Not_Valid")
    with pytest.raises(NoSuchBucketError):
        await put(buckets, "nowhere", "k", b"1")
    await buckets.create_bucket("keep")
    assert await buckets.create_bucket("keep") is False
    await put(buckets, "keep", "k", b"1")
    with pytest.raises(BucketNotEmptyError):
        await buckets.delete_bucket("keep")
    await buckets.delete_objects("keep", ["k"], actor=ACTOR)
    await buckets.delete_bucket("keep")
    assert await buckets.list_buckets() == []


async def test_an_open_object_reads_whole_after_it_is_replaced(buckets: BucketStore) -> None:
    await buckets.create_bucket("docs")
    await put(buckets, "docs", "a.txt", b"first " * 1000)
    _row, handle = await buckets.open_object("docs", "a.txt")
    await put(buckets, "docs", "a.txt", b"second")
    await buckets.delete_objects("docs", ["a.txt"], actor=ACTOR)
    assert await read_all(handle) == b"first " * 1000


async def test_a_restart_publishes_what_a_crash_left_and_drops_partial_writes(
    tmp_path: Path, bus: MemoryBus
) -> None:
    root = tmp_path / "buckets"
    store = BucketStore(root, bus)
    await store.start()
    await store.create_bucket("photos")
    await store.stop()
    # As if the process died after committing a change but before publishing it ...
    change = Change("ObjectCreated:Put", "photos", "late.jpg", 1, "e" * 32, 1.0)
    event = change_event(change, 99, region="us-east-1", actor=ACTOR)
    with sqlite3.connect(root / "index.db") as db:
        db.execute(
            "INSERT INTO outbox (topic, event) VALUES (?, ?)",
            ("_bucket.photos", encode_event(event)),
        )
    # ... and in the middle of two uploads: one still in tmp/, one renamed but not indexed.
    (root / "tmp" / "upload.part").write_bytes(b"half an object")
    orphan = root / "blobs" / "ab" / ("ab" + "0" * 30)
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"never indexed")

    again = BucketStore(root, bus)
    await again.start()
    try:
        [found] = await events(bus, "photos")
        assert found["subject"] == "late.jpg"
        assert not any((root / "tmp").iterdir())
        assert not orphan.exists()
        assert (await again.list_objects("photos")).objects == []
        # Publishing it again (a second restart) stores no duplicate.
        await again.stop()
        await again.start()
        assert len(await events(bus, "photos")) == 1
    finally:
        await again.stop()
