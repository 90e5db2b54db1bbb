"""Weighted, pinned and rolled-back aliases in the store, on SQLite and PostgreSQL:
what ``alias set`` keeps, what a deploy may move, and what the rollback watcher reads
and writes."""

from __future__ import annotations

import time
from typing import Any

import pytest

from triggerfish.errors import NotFoundError, ValidationError
from triggerfish.ids import new_id
from triggerfish.store import InvocationRecord, SqlStore
from triggerfish.store.records import Status
from triggerfish.store.usage import usage_by_version

RULE = {"max_error_rate": 0.05, "window": 300.0, "min_invocations": 20}


def digest(n: int) -> str:
    return f"{n:x}".rjust(64, "0")[::-1]


async def put(store: SqlStore, function: str, n: int) -> Any:
    d = digest(n)
    return await store.put_function_version(function, {"handler": "main.h"}, d, d[:12])


async def test_a_weighted_alias_is_kept_resolved_and_listed(store: SqlStore) -> None:
    one, two = await put(store, "resize", 1), await put(store, "resize", 2)

    record = await store.set_alias(
        "resize", "canary", 1, additional="2", weight=0.25, rollback=RULE
    )

    assert (record.version, record.additional_version, record.weight) == (
        one.version,
        two.version,
        0.25,
    )
    assert record.rollback == RULE
    assert record.pinned_at is not None
    assert await store.resolve_routing("resize", "canary") == (one, two, 0.25)
    assert await store.resolve("resize", "canary") == one
    assert await store.resolve_routing("resize", "live") == (two, None, 0.0)
    assert await store.watched_aliases() == [record]

    # Set again without routing: one version, no rule, nothing watched.
    plain = await store.set_alias("resize", "canary", 2)
    assert (plain.additional_version, plain.weight, plain.rollback) == (None, 0.0, None)
    assert await store.resolve_routing("resize", "canary") == (two, None, 0.0)
    assert await store.watched_aliases() == []


async def test_a_routing_to_an_unknown_or_the_same_version_is_refused(store: SqlStore) -> None:
    await put(store, "resize", 1)
    await put(store, "resize", 2)

    with pytest.raises(ValidationError, match=r"routing: .*no version '9'"):
        await store.set_alias("resize", "canary", 1, additional=9, weight=0.1)
    one = (await store.get_version("resize", 1)).version
    with pytest.raises(ValidationError, match="version 1 is the alias's main version"):
        await store.set_alias("resize", "canary", 1, additional=one, weight=0.1)
    assert [a.name for a in await store.list_aliases("resize")] == ["live"]


async def test_a_pinned_live_stays_through_new_versions_until_it_follows_again(
    store: SqlStore,
) -> None:
    await put(store, "resize", 1)
    await put(store, "resize", 2)
    one = (await store.get_version("resize", 1)).version
    pinned = await store.set_alias("resize", "live", 1)
    assert pinned.pinned_at is not None

    three = await put(store, "resize", 3)
    assert (await store.resolve("resize")).version == one
    assert (await store.follow_deploy("resize", three.version)).version == one

    followed = await store.follow_alias("resize", "live")
    assert (followed.version, followed.pinned_at) == (one, None)
    four = await put(store, "resize", 4)
    assert (await store.resolve("resize")).version == four.version
    with pytest.raises(ValidationError, match="only 'live' follows deploys"):
        await store.follow_alias("resize", "canary")


async def test_a_rollback_applies_only_while_the_alias_routes_to_the_failed_version(
    store: SqlStore,
) -> None:
    one, two = await put(store, "resize", 1), await put(store, "resize", 2)
    await store.set_alias("resize", "live", 1, additional=2, weight=0.5, rollback=RULE)
    seen = {"at": time.time(), "version": two.version, "error_rate": 1.0}

    rolled = await store.roll_back_alias("resize", "live", two.version, seen)

    assert rolled is not None
    assert (rolled.version, rolled.additional_version, rolled.rolled_back) == (
        one.version,
        None,
        seen,
    )
    assert await store.resolve_routing("resize", "live") == (one, None, 0.0)
    # Moved again since: a second rollback of the same read changes nothing.
    assert await store.roll_back_alias("resize", "live", two.version, seen) is None
    with pytest.raises(NotFoundError, match="no function 'nope'"):
        await store.follow_alias("nope", "live")


async def test_usage_is_counted_per_executed_version(store: SqlStore) -> None:
    now = time.time()
    outcomes: list[tuple[str, Status]] = [("a" * 12, "ok"), ("a" * 12, "ok"), ("b" * 12, "error")]
    records = [
        InvocationRecord(
            id=new_id(), function="resize", version=version, status=status, started_at=now
        )
        for version, status in outcomes
    ]
    await store.record_invocations(records)

    usage = dict(await usage_by_version(store, function="resize", since=now - 60))

    assert {v: (u.requests, u.errors) for v, u in usage.items()} == {
        "a" * 12: (2, 0),
        "b" * 12: (1, 1),
    }
