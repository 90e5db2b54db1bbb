"""Conditional writes on each backend: checked in the transaction of the write, so of
concurrent writers that each expect the key to be free exactly one stores its object."""

from __future__ import annotations

import asyncio

import pytest

from support.buckets import read_all
from triggerfish.sources.buckets import (
    Actor,
    BucketStore,
    NewObject,
    NoSuchKeyError,
    PreconditionFailedError,
    WriteCondition,
)

ACTOR = Actor(principal="TFTEST", source_ip="10.0.0.1", request_id="R1")
ABSENT = WriteCondition(if_absent=True)


async def put(store: BucketStore, key: str, data: bytes, condition: WriteCondition) -> str:
    writer = store.writer()
    writer.write(data)
    row = await store.put_object(
        "claims", key, writer, NewObject(), actor=ACTOR, condition=condition
    )
    return row.etag


async def read(store: BucketStore, key: str) -> bytes:
    _row, handle = await store.open_object("claims", key)
    return await read_all(handle)


async def test_if_none_match_and_if_match(buckets: BucketStore) -> None:
    await buckets.create_bucket("claims")
    etag = await put(buckets, "k", b"one", ABSENT)
    with pytest.raises(PreconditionFailedError):
        await put(buckets, "k", b"two", ABSENT)
    with pytest.raises(PreconditionFailedError):
        await put(buckets, "k", b"two", WriteCondition(if_match=("0" * 32,)))
    assert await read(buckets, "k") == b"one"
    await put(buckets, "k", b"three", WriteCondition(if_match=(etag,)))
    assert await read(buckets, "k") == b"three"
    with pytest.raises(NoSuchKeyError):
        await put(buckets, "missing", b"x", WriteCondition(if_match=("*",)))


async def test_one_of_concurrent_claims_wins(buckets: BucketStore) -> None:
    await buckets.create_bucket("claims")
    outcomes = await asyncio.gather(
        *(put(buckets, "claim", f"writer {n}".encode(), ABSENT) for n in range(10)),
        return_exceptions=True,
    )
    won = [o for o in outcomes if isinstance(o, str)]
    assert len(won) == 1
    assert all(isinstance(o, PreconditionFailedError) for o in outcomes if o not in won)
    row, handle = await buckets.open_object("claims", "claim")
    await handle.aclose()
    assert row.etag == won[0]
