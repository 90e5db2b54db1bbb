"""What the nodes of a cluster share through the store: heartbeats, leases, code blobs
and generation counters, on SQLite and PostgreSQL, with nodes racing each other as
separate stores (separate connection pools) on one database."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from support.stores import Clock, nodes
from triggerfish.errors import NotFoundError, ValidationError
from triggerfish.store import SqlStore
from triggerfish.store.cluster import NodeRecord


async def test_heartbeats_create_and_refresh_a_node(store: SqlStore) -> None:
    clock = Clock()
    async with nodes(store.url, 1, clock) as [node]:
        await node.cluster.heartbeat(
            "node-a", address="http://10.0.0.1:8080", version="0.2.0", started_at=990.0
        )
        [first] = await store.cluster.list_nodes()
        clock.now += 5
        await node.cluster.heartbeat(
            "node-a",
            address="http://10.0.0.1:8080",
            version="0.2.0",
            started_at=990.0,
            info={"warm_environments": 3, "in_flight": 2},
        )
        await node.cluster.heartbeat(
            "node-b", address="http://10.0.0.2:8080", version="0.2.1", started_at=1_004.0
        )

    assert first == NodeRecord(
        id="node-a",
        address="http://10.0.0.1:8080",
        version="0.2.0",
        started_at=990.0,
        heartbeat_at=1_000.0,
        state="running",
        info={},
    )
    a, b = await store.cluster.list_nodes()
    assert (a.id, a.heartbeat_at, a.info) == (
        "node-a",
        1_005.0,
        {"warm_environments": 3, "in_flight": 2},
    )
    assert (b.id, b.address, b.version, b.started_at) == (
        "node-b",
        "http://10.0.0.2:8080",
        "0.2.1",
        1_004.0,
    )


async def test_a_state_set_by_another_node_outlives_heartbeats(store: SqlStore) -> None:
    beat: dict[str, Any] = {"address": "http://a", "version": "0.2.0", "started_at": 1.0}
    await store.cluster.heartbeat("node-a", **beat)

    await store.cluster.set_node_state("node-a", "draining")
    await store.cluster.heartbeat("node-a", **beat)
    assert [n.state for n in await store.cluster.list_nodes()] == ["draining"]

    await store.cluster.heartbeat("node-a", **beat, state="stopped")
    assert [n.state for n in await store.cluster.list_nodes()] == ["stopped"]


async def test_unknown_nodes_and_states(store: SqlStore) -> None:
    with pytest.raises(NotFoundError, match="no node 'ghost'"):
        await store.cluster.set_node_state("ghost", "draining")
    with pytest.raises(ValidationError, match="running, draining, stopped"):
        await store.cluster.heartbeat(
            "node-a", address="http://a", version="0.2.0", started_at=1.0, state="asleep"
        )
    await store.cluster.heartbeat("node-a", address="http://a", version="0.2.0", started_at=1.0)
    with pytest.raises(ValidationError, match="running, draining, stopped"):
        await store.cluster.set_node_state("node-a", "asleep")
    assert [n.state for n in await store.cluster.list_nodes()] == ["running"]


async def test_a_forgotten_node_is_no_longer_listed(store: SqlStore) -> None:
    await store.cluster.heartbeat("node-a", address="http://a", version="0.2.0", started_at=1.0)

    assert await store.cluster.forget_node("node-a") is True
    assert await store.cluster.forget_node("node-a") is False
    assert await store.cluster.list_nodes() == []


async def test_a_lease_is_held_renewed_released_and_taken_after_it_expires(
    store: SqlStore,
) -> None:
    clock = Clock()
    async with nodes(store.url, 1, clock) as [node]:
        lease = node.cluster
        assert await lease.lease_holder("schedules") is None
        assert await lease.acquire_lease("schedules", "node-a", ttl=10) is True
        assert await lease.acquire_lease("schedules", "node-b", ttl=10) is False
        assert await lease.lease_holder("schedules") == ("node-a", 1_010.0)

        clock.now += 8
        assert await lease.acquire_lease("schedules", "node-a", ttl=10) is True  # renewed
        clock.now += 8
        assert await lease.acquire_lease("schedules", "node-b", ttl=10) is False
        assert await lease.lease_holder("schedules") == ("node-a", 1_018.0)

        clock.now += 2  # expired: free for anyone
        assert await lease.lease_holder("schedules") is None
        assert await lease.acquire_lease("schedules", "node-b", ttl=10) is True
        assert await lease.lease_holder("schedules") == ("node-b", 1_028.0)

        await lease.release_lease("schedules", "node-a")  # not the holder: no change
        assert await lease.lease_holder("schedules") == ("node-b", 1_028.0)
        await lease.release_lease("schedules", "node-b")
        assert await lease.lease_holder("schedules") is None
        assert await lease.acquire_lease("schedules", "node-a", ttl=10) is True


async def test_a_lease_needs_a_positive_ttl(store: SqlStore) -> None:
    with pytest.raises(ValidationError, match="positive time to live"):
        await store.cluster.acquire_lease("schedules", "node-a", ttl=0)


async def test_nodes_racing_for_a_lease_make_exactly_one_holder(store: SqlStore) -> None:
    clock = Clock()
    async with nodes(store.url, 6, clock) as racers:
        observer = racers[0].cluster

        async def race() -> list[str]:
            taken = await asyncio.gather(
                *(
                    node.cluster.acquire_lease("schedules", f"node-{i}", ttl=10)
                    for i, node in enumerate(racers)
                )
            )
            return [f"node-{i}" for i, won in enumerate(taken) if won]

        for _ in range(5):  # a free lease
            [winner] = await race()
            assert await observer.lease_holder("schedules") == (winner, clock.now + 10)
            await observer.release_lease("schedules", winner)

        [holder] = await race()
        for _ in range(5):  # an expired lease: the old holder renews or another takes it
            clock.now += 11
            [holder] = await race()
            assert await observer.lease_holder("schedules") == (holder, clock.now + 10)
            clock.now += 5  # held: nobody else gets it, the holder renews
            assert await race() == [holder]


async def test_blobs_are_stored_once_by_digest(store: SqlStore) -> None:
    code = bytes(range(256)) * 1000  # binary, with NULs
    digest = "9" * 64

    assert await store.cluster.has_blob(digest) is False
    assert await store.cluster.get_blob(digest) is None
    await store.cluster.put_blob(digest, "code", code)
    await store.cluster.put_blob(digest, "code", b"other")  # a digest names one content

    assert await store.cluster.has_blob(digest) is True
    assert await store.cluster.get_blob(digest) == code
    assert await store.cluster.delete_blob(digest) is True
    assert await store.cluster.delete_blob(digest) is False
    assert await store.cluster.get_blob(digest) is None


async def test_nodes_putting_the_same_blob_at_once_all_succeed(store: SqlStore) -> None:
    code = b"PK\x03\x04" + bytes(50_000)
    async with nodes(store.url, 4) as racers:
        await asyncio.gather(*(node.cluster.put_blob("8" * 64, "code", code) for node in racers))

    assert await store.cluster.get_blob("8" * 64) == code


async def test_generations_count_changes_from_one(store: SqlStore) -> None:
    assert await store.cluster.generation() == 0
    assert await store.cluster.bump_generation() == 1
    assert await store.cluster.bump_generation() == 2
    assert await store.cluster.bump_generation("routes") == 1
    assert (await store.cluster.generation(), await store.cluster.generation("routes")) == (2, 1)


async def test_concurrent_bumps_lose_no_increment(store: SqlStore) -> None:
    async with nodes(store.url, 5) as racers:

        async def bump_many(node: SqlStore) -> list[int]:
            return [await node.cluster.bump_generation() for _ in range(20)]

        values = await asyncio.gather(*(bump_many(node) for node in racers))

    seen = sorted(itertools.chain.from_iterable(values))
    assert seen == list(range(1, 101))
    assert await store.cluster.generation() == 100
