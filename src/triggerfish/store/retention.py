"""Pruning the store: invocation records (with their logs) and the events of chains,
in bounded batches, with their usage kept as daily sums; and SQLite space given back.

``prune_invocations`` removes at most ``limit`` records per call, oldest first, in one
transaction that also adds their sums to ``tf_usage_daily``: a record's usage is either
in its record or in the day's sums, never in both and never in neither, whatever stops
the node between two calls. The day of a record is the UTC day of its id (the time its
request reached the executor), the same time cost reports bound records by.

SQLite files made with ``auto_vacuum = INCREMENTAL`` keep the pages that pruning frees
on a free list that ``incremental_vacuum`` hands back to the filesystem a bounded
number at a time; an older file is switched once with a full ``VACUUM``
(``switch_to_incremental``), which rewrites it, so only while it is small.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from triggerfish.ids import id_time
from triggerfish.store import schema as t
from triggerfish.store.engine import dialect_insert, in_chunks
from triggerfish.store.sql import SqlStore

DAY = 86400
FAILED = ("error", "timeout", "oom", "crashed")
_SUMS = (
    "requests",
    "errors",
    "throttled",
    "cold_starts",
    "duration_ms",
    "billed_duration_ms",
    "init_duration_ms",
    "mb_ms",
)


@dataclass(frozen=True, slots=True)
class Cutoff:
    """Prune the records started before ``until`` of ``functions`` (every function
    but ``others`` when ``functions`` is None)."""

    until: float
    functions: Collection[str] | None = None
    others: Collection[str] = ()


async def prune_invocations(store: SqlStore, cutoff: Cutoff, *, limit: int) -> int:
    """Remove at most ``limit`` of the oldest records that ``cutoff`` names, their
    usage added to the daily sums in the same transaction; returns how many."""
    if cutoff.functions is not None and not cutoff.functions:
        return 0
    c = t.invocations.c
    query = sa.select(
        c.id,
        c.function,
        c.version,
        c.status,
        c.cold_start,
        c.duration_ms,
        c.billed_duration_ms,
        c.init_duration_ms,
        c.memory_size_mb,
    ).where(c.started_at < cutoff.until)
    if cutoff.functions is not None:
        query = query.where(c.function.in_(sorted(cutoff.functions)))
    elif cutoff.others:
        query = query.where(c.function.not_in(sorted(cutoff.others)))
    query = query.order_by(c.started_at).limit(limit)
    async with store._write() as conn:  # part of the store: its transactions
        rows = (await conn.execute(query)).all()
        if not rows:
            return 0
        sums = _daily_sums(rows)
        insert = dialect_insert(conn, t.usage_daily)
        excluded = insert.excluded
        u = t.usage_daily.c
        upsert = insert.on_conflict_do_update(
            index_elements=[u.day, u.function, u.version],
            set_={name: u[name] + excluded[name] for name in _SUMS},
        )
        await conn.execute(upsert, list(sums.values()))
        for ids in in_chunks([row.id for row in rows]):
            await conn.execute(t.invocations.delete().where(c.id.in_(ids)))
    return len(rows)


async def prune_chain_events(store: SqlStore, until: float, *, limit: int) -> int:
    """Remove about ``limit`` of the oldest chain events kept before ``until`` (those
    kept in the same instant as the last of them too); returns how many."""
    e = t.chain_events.c
    async with store._write() as conn:
        last = (
            await conn.execute(
                sa.select(e.recorded_at)
                .where(e.recorded_at < until)
                .order_by(e.recorded_at)
                .offset(limit - 1)
                .limit(1)
            )
        ).scalar()
        bound = e.recorded_at < until
        if last is not None:
            bound = bound & (e.recorded_at <= last)
        done = await conn.execute(t.chain_events.delete().where(bound))
        return int(done.rowcount)


async def daily_usage(
    store: SqlStore,
    *,
    function: str | None = None,
    since: float | None = None,
    until: float | None = None,
) -> list[sa.Row[Any]]:
    """The daily sums of pruned records whose day starts in ``[since, until)``: rows of
    ``day``, ``function``, ``version`` and the sums."""
    u = t.usage_daily.c
    query = sa.select(t.usage_daily)
    if function is not None:
        query = query.where(u.function == function)
    if since is not None:
        query = query.where(u.day >= since)
    if until is not None:
        query = query.where(u.day < until)
    async with store._read() as conn:
        return list((await conn.execute(query.order_by(u.function, u.version, u.day))).all())


def _daily_sums(rows: Sequence[Any]) -> dict[tuple[int, str, str], dict[str, Any]]:
    out: dict[tuple[int, str, str], dict[str, Any]] = {}
    for row in rows:
        day = int(id_time(row.id) // DAY * DAY)
        key = (day, row.function, row.version)
        sums = out.get(key)
        if sums is None:
            sums = out[key] = {
                "day": day,
                "function": row.function,
                "version": row.version,
                **dict.fromkeys(_SUMS, 0),
            }
        ran = row.status != "throttled"
        sums["requests"] += int(ran)
        sums["errors"] += int(row.status in FAILED)
        sums["throttled"] += int(not ran)
        sums["cold_starts"] += int(bool(row.cold_start))
        sums["duration_ms"] += float(row.duration_ms or 0.0)
        sums["billed_duration_ms"] += int(row.billed_duration_ms or 0)
        sums["init_duration_ms"] += float(row.init_duration_ms or 0.0)
        sums["mb_ms"] += int(row.memory_size_mb or 0) * int(row.billed_duration_ms or 0)
    for sums in out.values():
        sums["duration_ms"] = float(sums["duration_ms"])
        sums["init_duration_ms"] = float(sums["init_duration_ms"])
    return out


# -- SQLite space -----------------------------------------------------------------------

INCREMENTAL = 2  # ``PRAGMA auto_vacuum`` of a file that frees pages incrementally


def store_file(store: SqlStore) -> str | None:
    """The SQLite file of ``store``; None on PostgreSQL."""
    return store._db.sqlite_file


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=10.0, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 10000")
    return conn


def auto_vacuum_mode(path: str) -> int:
    """The file's ``auto_vacuum`` mode (0 none, 1 full, 2 incremental)."""
    conn = _connect(path)
    try:
        return int(conn.execute("PRAGMA auto_vacuum").fetchone()[0])
    finally:
        conn.close()


def switch_to_incremental(path: str, *, max_bytes: int) -> bool:
    """Give a file made before incremental vacuum the mode, with the full ``VACUUM``
    that takes, when it is at most ``max_bytes``; True when the file has the mode now."""
    conn = _connect(path)
    try:
        if int(conn.execute("PRAGMA auto_vacuum").fetchone()[0]) == INCREMENTAL:
            return True
        if os.path.getsize(path) > max_bytes:
            return False
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        conn.execute("VACUUM")
        return int(conn.execute("PRAGMA auto_vacuum").fetchone()[0]) == INCREMENTAL
    finally:
        conn.close()


def incremental_vacuum(path: str, *, pages: int) -> int:
    """Hand at most ``pages`` free pages of the file back to the filesystem and write
    the change through to the file; returns how many pages were free before."""
    conn = _connect(path)
    try:
        free = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
        if free:
            # Run to the end: each step of the statement frees one page.
            conn.executescript(f"PRAGMA incremental_vacuum({int(pages)});")
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        return free
    finally:
        conn.close()


async def give_back_space(path: str, *, pages: int) -> int:
    """``incremental_vacuum`` off the event loop."""
    return await asyncio.to_thread(incremental_vacuum, path, pages=pages)
