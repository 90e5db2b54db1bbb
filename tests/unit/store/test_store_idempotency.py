"""Idempotency records on SQLite and PostgreSQL: a claim, its completion and release,
expiry and the takeover of a lease that ended, with deliveries racing each other from
separate stores (separate connection pools) on one database."""

from __future__ import annotations

import asyncio

import pytest

from support.stores import Clock, nodes
from triggerfish.errors import ValidationError
from triggerfish.store import SqlStore


async def test_a_completed_key_gives_its_result_to_the_next_delivery(store: SqlStore) -> None:
    clock = Clock()
    async with nodes(store.url, 1, clock) as [node]:
        first = await node.idempotency.claim("pay", "order-1", lease=30)
        assert (first.status, first.expires_at) == ("claimed", 1_030.0)
        assert first.token is not None
        assert await node.idempotency.complete(
            "pay", "order-1", first.token, '{"paid": 12}', expires=3600
        )

        clock.now += 100
        again = await node.idempotency.claim("pay", "order-1", lease=30)
        assert (again.status, again.result, again.expires_at) == (
            "completed",
            '{"paid": 12}',
            4_600.0,
        )


async def test_a_claim_in_progress_is_reported_with_its_lease(store: SqlStore) -> None:
    clock = Clock()
    async with nodes(store.url, 1, clock) as [node]:
        await node.idempotency.claim("pay", "order-1", lease=30)
        clock.now += 10
        second = await node.idempotency.claim("pay", "order-1", lease=30)
    assert (second.status, second.expires_at, second.token) == ("in_progress", 1_030.0, None)


async def test_keys_are_scoped_to_their_function(store: SqlStore) -> None:
    clock = Clock()
    async with nodes(store.url, 1, clock) as [node]:
        mine = await node.idempotency.claim("pay", "order-1", lease=30)
        assert mine.token is not None
        await node.idempotency.complete("pay", "order-1", mine.token, "1", expires=60)
        other = await node.idempotency.claim("ship", "order-1", lease=30)
    assert other.status == "claimed"


async def test_a_released_claim_lets_the_next_delivery_run(store: SqlStore) -> None:
    clock = Clock()
    async with nodes(store.url, 1, clock) as [node]:
        first = await node.idempotency.claim("pay", "order-1", lease=30)
        assert first.token is not None
        assert await node.idempotency.release("pay", "order-1", first.token)
        retry = await node.idempotency.claim("pay", "order-1", lease=30)
        assert retry.status == "claimed"
        # A token that holds nothing releases nothing.
        assert not await node.idempotency.release("pay", "order-1", first.token)
        assert (await node.idempotency.claim("pay", "order-1", lease=30)).status == "in_progress"


async def test_a_lease_that_ended_is_taken_over_and_the_old_holder_cannot_complete(
    store: SqlStore,
) -> None:
    clock = Clock()
    async with nodes(store.url, 1, clock) as [node]:
        dead = await node.idempotency.claim("pay", "order-1", lease=30)
        assert dead.token is not None
        clock.now += 30
        heir = await node.idempotency.claim("pay", "order-1", lease=30)
        assert heir.status == "claimed"
        assert heir.token is not None
        assert heir.token != dead.token

        assert not await node.idempotency.complete("pay", "order-1", dead.token, "0", expires=60)
        assert not await node.idempotency.release("pay", "order-1", dead.token)
        assert await node.idempotency.complete("pay", "order-1", heir.token, "1", expires=60)
        found = await node.idempotency.claim("pay", "order-1", lease=30)
    assert (found.status, found.result) == ("completed", "1")


async def test_an_expired_record_runs_again_and_is_pruned(store: SqlStore) -> None:
    clock = Clock()
    async with nodes(store.url, 1, clock) as [node]:
        first = await node.idempotency.claim("pay", "order-1", lease=30)
        assert first.token is not None
        await node.idempotency.complete("pay", "order-1", first.token, "1", expires=60)
        kept = await node.idempotency.claim("pay", "order-2", lease=30)
        assert kept.token is not None
        await node.idempotency.complete("pay", "order-2", kept.token, "2", expires=600)

        clock.now += 60
        assert await node.idempotency.prune() == 1
        assert await node.idempotency.count("pay") == 1
        assert (await node.idempotency.claim("pay", "order-1", lease=30)).status == "claimed"
        assert (await node.idempotency.claim("pay", "order-2", lease=30)).status == "completed"


@pytest.mark.parametrize("taken_over", [False, True], ids=["new key", "lease ended"])
async def test_of_deliveries_racing_for_a_key_exactly_one_claims_it(
    store: SqlStore, taken_over: bool
) -> None:
    clock = Clock()
    async with nodes(store.url, 4, clock) as racers:
        if taken_over:
            await racers[0].idempotency.claim("pay", "order-1", lease=5)
            clock.now += 5
        claims = await asyncio.gather(
            *(r.idempotency.claim("pay", "order-1", lease=30) for r in racers for _ in range(3))
        )
    statuses = sorted(claim.status for claim in claims)
    assert statuses == ["claimed"] + ["in_progress"] * 11


@pytest.mark.parametrize(
    ("key", "lease", "field"), [("", 30, "key"), ("k" * 257, 30, "key"), ("k", 0, "lease")]
)
async def test_a_bad_key_or_lease_is_refused(
    store: SqlStore, key: str, lease: float, field: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        await store.idempotency.claim("pay", key, lease=lease)
    assert raised.value.field == field
