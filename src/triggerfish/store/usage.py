"""Usage sums over invocation records, per function, for metering and costs.

One aggregate query, the same on SQLite and PostgreSQL; for a chart, one query for all
the periods of a span (``usage_by_period``), which reads each record once where a query
per period read the span twice. Time bounds apply to the
invocation's id, which is made when the request reaches the executor (ids sort by
creation time), so records that never started (throttled, failed init) count in the
period of their request. Throttled requests are counted apart and are not requests
that ran: nothing was executed for them.

Records that retention pruned count through their daily sums (``tf_usage_daily``,
``store/retention.py``), added to those of the records still kept: a pruned day counts
in a span when the day starts within it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from triggerfish.ids import id_floor
from triggerfish.store import schema as t
from triggerfish.store.retention import daily_usage
from triggerfish.store.sql import SqlStore

FAILED = ("error", "timeout", "oom", "crashed")


@dataclass(frozen=True, slots=True)
class Usage:
    function: str
    requests: int  # invocations that ran (every status but throttled)
    errors: int  # error, timeout, oom, crashed
    throttled: int
    cold_starts: int
    duration_ms: float
    billed_duration_ms: int
    init_duration_ms: float
    mb_ms: int  # sum of memory size (MB) x billed duration (ms): exact, for GB-seconds

    @property
    def gb_seconds(self) -> float:
        return self.mb_ms / 1024 / 1000


async def usage_by_function(
    store: SqlStore,
    *,
    function: str | None = None,
    since: float | None = None,
    until: float | None = None,
) -> list[Usage]:
    """Sums of the invocation records requested in ``[since, until)``, one per function
    that has any, ordered by function name."""
    query = _sums().group_by(t.invocations.c.function)
    query = _bounded(query, function=function, since=since, until=until)
    # The store keeps its transactions private; this module is part of the store.
    async with store._read() as conn:
        rows = (await conn.execute(query)).all()
    kept = [_usage(row) for row in rows]
    pruned = await daily_usage(store, function=function, since=since, until=until)
    return merged([kept, [_usage(row) for row in pruned]])


async def usage_by_version(
    store: SqlStore,
    *,
    function: str | None = None,
    since: float | None = None,
    until: float | None = None,
) -> list[tuple[str, Usage]]:
    """``usage_by_function`` cut by the version that ran (the executed one, which for
    a weighted alias may be either of its two), ordered by function, then version."""
    c = t.invocations.c
    query = _sums(c.version).group_by(c.function, c.version).order_by(c.version)
    query = _bounded(query, function=function, since=since, until=until)
    async with store._read() as conn:
        rows = (await conn.execute(query)).all()
    found: dict[tuple[str, str], list[Usage]] = {}
    for row in rows:
        found.setdefault((row.function, str(row.version)), []).append(_usage(row))
    for row in await daily_usage(store, function=function, since=since, until=until):
        found.setdefault((row.function, str(row.version)), []).append(_usage(row))
    return [(version, summed(name, found[name, version])) for name, version in sorted(found)]


async def usage_by_period(
    store: SqlStore,
    *,
    since: float,
    until: float,
    periods: int,
    function: str | None = None,
) -> list[list[Usage]]:
    """``usage_by_function`` of each of ``periods`` equal periods of ``[since, until)``,
    in order, from one query: each record's period is found by comparing its id with
    the periods' first ids, as the per-period bounds would."""
    step = (until - since) / periods
    edges = [id_floor(since + n * step) for n in range(1, periods)]
    c = t.invocations.c
    period: sa.ColumnElement[int] = (
        sa.case(*((c.id < edge, n) for n, edge in enumerate(edges)), else_=len(edges))
        if edges
        else sa.literal(0)
    ).label("period")
    query = _sums(period).group_by(period, c.function)
    query = _bounded(query, function=function, since=since, until=until)
    out: list[list[Usage]] = [[] for _ in range(periods)]
    async with store._read() as conn:
        for row in (await conn.execute(query)).all():
            out[int(row.period)].append(_usage(row))
    pruned = await daily_usage(store, function=function, since=since, until=until)
    if pruned:
        for row in pruned:
            out[min(int((row.day - since) // step), periods - 1)].append(_usage(row))
        out = [merged([rows]) for rows in out]
    return out


def _sums(*leading: sa.ColumnElement[Any]) -> sa.Select[Any]:
    c = t.invocations.c
    ran = c.status != "throttled"

    def count(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
        return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)

    return sa.select(
        *leading,
        c.function,
        count(ran).label("requests"),
        count(c.status.in_(FAILED)).label("errors"),
        count(c.status == "throttled").label("throttled"),
        count(c.cold_start.is_(True)).label("cold_starts"),
        sa.func.coalesce(sa.func.sum(c.duration_ms), 0.0).label("duration_ms"),
        sa.func.coalesce(sa.func.sum(c.billed_duration_ms), 0).label("billed_duration_ms"),
        sa.func.coalesce(sa.func.sum(c.init_duration_ms), 0.0).label("init_duration_ms"),
        sa.func.coalesce(sa.func.sum(c.memory_size_mb * c.billed_duration_ms), 0).label("mb_ms"),
    ).order_by(c.function)


def _bounded(
    query: sa.Select[Any],
    *,
    function: str | None,
    since: float | None,
    until: float | None,
) -> sa.Select[Any]:
    c = t.invocations.c
    if function is not None:
        query = query.where(c.function == function)
    if since is not None:
        query = query.where(c.id >= id_floor(since))
    if until is not None:
        query = query.where(c.id < id_floor(until))
    return query


def _usage(row: sa.Row[Any]) -> Usage:
    return Usage(
        function=row.function,
        requests=int(row.requests),
        errors=int(row.errors),
        throttled=int(row.throttled),
        cold_starts=int(row.cold_starts),
        duration_ms=float(row.duration_ms),
        billed_duration_ms=int(row.billed_duration_ms),
        init_duration_ms=float(row.init_duration_ms),
        mb_ms=int(row.mb_ms),
    )


def merged(periods: Sequence[Sequence[Usage]]) -> list[Usage]:
    """The usage of the periods together, per function, ordered by function name."""
    by_function: dict[str, list[Usage]] = {}
    for rows in periods:
        for row in rows:
            by_function.setdefault(row.function, []).append(row)
    return [summed(name, by_function[name]) for name in sorted(by_function)]


def summed(function: str, items: Sequence[Usage]) -> Usage:
    """The usage of ``items`` together, named ``function``."""
    return Usage(
        function=function,
        requests=sum(i.requests for i in items),
        errors=sum(i.errors for i in items),
        throttled=sum(i.throttled for i in items),
        cold_starts=sum(i.cold_starts for i in items),
        duration_ms=sum(i.duration_ms for i in items),
        billed_duration_ms=sum(i.billed_duration_ms for i in items),
        init_duration_ms=sum(i.init_duration_ms for i in items),
        mb_ms=sum(i.mb_ms for i in items),
    )
