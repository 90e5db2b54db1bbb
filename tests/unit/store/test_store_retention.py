"""Pruning invocation records and chain events in batches, on SQLite and PostgreSQL:
what goes, what stays, costs that do not change, and SQLite space given back."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from support.stores import Clock
from triggerfish.ids import id_floor, new_id
from triggerfish.observe.costs import CostMeter
from triggerfish.store import InvocationRecord, SqlStore
from triggerfish.store.engine import in_chunks
from triggerfish.store.records import ChainEvent
from triggerfish.store.retention import (
    Cutoff,
    auto_vacuum_mode,
    incremental_vacuum,
    prune_chain_events,
    prune_invocations,
    store_file,
)

DAY = 86400
MIDNIGHT = 1_700_006_400.0  # a UTC day's first second


def made_at(at: float, **fields: Any) -> InvocationRecord:
    """A record whose id and start say it was made at ``at``."""
    values: dict[str, Any] = {
        "id": id_floor(at)[:10] + new_id()[10:],
        "function": "resize",
        "version": "0123456789ab",
        "status": "ok",
        "started_at": at,
        "duration_ms": 120.5,
        "billed_duration_ms": 121,
        "memory_size_mb": 256,
    }
    values.update(fields)
    return InvocationRecord(**values)


def checkpoint(path: str) -> None:
    """Write the write-ahead log through to the file, so its size tells."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()


def size(path: str) -> int:
    return os.path.getsize(path)


async def prune_all(store: SqlStore, cutoff: Cutoff, *, limit: int = 5000) -> int:
    total = 0
    while removed := await prune_invocations(store, cutoff, limit=limit):
        total += removed
    return total


async def remaining(store: SqlStore) -> list[InvocationRecord]:
    return await store.list_invocations(limit=1000)


async def reports(meter: CostMeter) -> list[dict[str, Any]]:
    """Every cut of the costs: all time, by version, by day, of one function."""
    since, until = MIDNIGHT, MIDNIGHT + 3 * DAY
    return [
        (await meter.report()).to_json(),
        (await meter.report(since=since, until=until, by_version=True)).to_json(),
        (await meter.report(since=since, until=until, periods=3)).to_json(),
        (await meter.report(function="resize", since=since, until=until)).to_json(),
    ]


async def test_old_records_go_and_their_costs_stay(store: SqlStore) -> None:
    rows = [
        made_at(MIDNIGHT + 3600),
        made_at(MIDNIGHT + 7200, status="error", cold_start=True, init_duration_ms=80.25),
        made_at(MIDNIGHT + 7300, status="throttled", duration_ms=0.0, billed_duration_ms=0),
        made_at(MIDNIGHT + 7400, version="ba9876543210", memory_size_mb=1024),
        made_at(MIDNIGHT + DAY + 600, function="notify", status="timeout"),
        made_at(MIDNIGHT + 2 * DAY + 60),  # newer than the retention: stays
    ]
    await store.record_invocations(rows)
    meter = CostMeter(store)
    before = await reports(meter)

    assert await prune_all(store, Cutoff(MIDNIGHT + 2 * DAY), limit=2) == 5

    assert [r.id for r in await remaining(store)] == [rows[-1].id]
    after = await reports(meter)
    assert after == before
    total = after[0]["total"]
    assert (total["requests"], total["errors"], total["throttled"]) == (5, 2, 1)


async def test_a_batch_removes_at_most_its_limit_oldest_first(store: SqlStore) -> None:
    rows = [made_at(MIDNIGHT + n) for n in range(7)]
    await store.record_invocations(rows)
    cutoff = Cutoff(MIDNIGHT + DAY)
    assert await prune_invocations(store, cutoff, limit=3) == 3
    assert sorted(r.id for r in await remaining(store)) == sorted(r.id for r in rows[3:])
    assert await prune_invocations(store, cutoff, limit=3) == 3
    assert await prune_invocations(store, cutoff, limit=3) == 1
    assert await prune_invocations(store, cutoff, limit=3) == 0


async def test_prunes_of_any_size_send_one_delete_statement(store: SqlStore) -> None:
    """A prune deletes by id lists of one length: a statement per length would stay
    prepared in every connection of a node that prunes all day."""
    rows = [made_at(MIDNIGHT + n / 100) for n in range(1203)]
    await store.record_invocations(rows)
    deletes: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("DELETE FROM TF_INVOCATIONS"):
            deletes.append(statement)

    engine = store._db._engine
    assert engine is not None
    sa.event.listen(engine.sync_engine, "before_cursor_execute", seen)
    cutoff = Cutoff(MIDNIGHT + DAY)
    assert [await prune_invocations(store, cutoff, limit=n) for n in (1000, 150, 7, 50)] == [
        1000,
        150,
        7,
        46,
    ]
    assert await remaining(store) == []
    assert len(deletes) == 5
    assert len(set(deletes)) == 1


def test_in_chunks_pads_the_last_with_its_last_value() -> None:
    assert list(in_chunks([1, 2, 3, 4, 5], size=2)) == [[1, 2], [3, 4], [5, 5]]
    assert list(in_chunks([], size=2)) == []
    assert list(in_chunks(list(range(4)), size=4)) == [[0, 1, 2, 3]]


async def test_a_cutoff_names_its_functions_or_spares_them(store: SqlStore) -> None:
    rows = [made_at(MIDNIGHT, function=name) for name in ("resize", "notify", "audit")]
    await store.record_invocations(rows)
    await prune_all(store, Cutoff(MIDNIGHT + 1, others=("audit", "notify")))
    assert sorted(r.function for r in await remaining(store)) == ["audit", "notify"]
    await prune_all(store, Cutoff(MIDNIGHT + 1, functions=("notify",)))
    assert [r.function for r in await remaining(store)] == ["audit"]


async def test_chain_events_older_than_the_cutoff_go(database_url: str) -> None:
    clock = Clock(MIDNIGHT)
    async with SqlStore(database_url, clock=clock) as store:

        def event(n: int) -> ChainEvent:
            return ChainEvent(correlation=f"c{n}", id=f"e{n}", source="s", topic="t", type="x")

        await store.chains.record([event(1), event(2)])
        clock.now += DAY
        await store.chains.record([event(3)])

        assert await prune_chain_events(store, MIDNIGHT + 1, limit=5000) == 2
        assert (await store.chains.rows("c1", limit=10)).events == []
        assert [e.id for e in (await store.chains.rows("c3", limit=10)).events] == ["e3"]


async def test_incremental_vacuum_gives_a_large_prune_back(tmp_path: Path) -> None:
    async with SqlStore(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}") as store:
        path = store_file(store)
        assert path is not None
        assert auto_vacuum_mode(path) == 2  # a new file frees pages incrementally
        logs = "x" * 2000
        await store.record_invocations([made_at(MIDNIGHT + n, logs=logs) for n in range(4000)])
        checkpoint(path)
        full = size(path)

        await prune_all(store, Cutoff(MIDNIGHT + DAY))
        incremental_vacuum(path, pages=100_000)

        assert size(path) < full / 4


async def test_without_vacuum_a_file_reuses_what_a_prune_freed(tmp_path: Path) -> None:
    """``sqlite_vacuum = false``: no auto-vacuum (and its upkeep in every write); the
    file keeps its size after a prune, and the next records fill the freed pages."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    async with SqlStore(url, vacuum=False) as store:
        path = store_file(store)
        assert path is not None
        assert auto_vacuum_mode(path) == 0
        logs = "x" * 2000
        await store.record_invocations([made_at(MIDNIGHT + n, logs=logs) for n in range(4000)])
        checkpoint(path)
        full = size(path)
        await prune_all(store, Cutoff(MIDNIGHT + DAY))
        await store.record_invocations(
            [made_at(MIDNIGHT + DAY + n, logs=logs) for n in range(4000)]
        )
        checkpoint(path)
        assert size(path) <= full * 1.05
