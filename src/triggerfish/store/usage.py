"""Usage sums over invocation records, per function, for metering and costs.

One aggregate query, the same on SQLite and PostgreSQL. Time bounds apply to the
invocation's id, which is made when the request reaches the executor (ids sort by
creation time), so records that never started (throttled, failed init) count in the
period of their request. Throttled requests are counted apart and are not requests
that ran: nothing was executed for them.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from triggerfish.ids import id_floor
from triggerfish.store import schema as t
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
    c = t.invocations.c
    ran = c.status != "throttled"

    def count(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
        return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)

    query = (
        sa.select(
            c.function,
            count(ran).label("requests"),
            count(c.status.in_(FAILED)).label("errors"),
            count(c.status == "throttled").label("throttled"),
            count(c.cold_start.is_(True)).label("cold_starts"),
            sa.func.coalesce(sa.func.sum(c.duration_ms), 0.0).label("duration_ms"),
            sa.func.coalesce(sa.func.sum(c.billed_duration_ms), 0).label("billed_duration_ms"),
            sa.func.coalesce(sa.func.sum(c.init_duration_ms), 0.0).label("init_duration_ms"),
            sa.func.coalesce(sa.func.sum(c.memory_size_mb * c.billed_duration_ms), 0).label(
                "mb_ms"
            ),
        )
        .group_by(c.function)
        .order_by(c.function)
    )
    if function is not None:
        query = query.where(c.function == function)
    if since is not None:
        query = query.where(c.id >= id_floor(since))
    if until is not None:
        query = query.where(c.id < id_floor(until))
    # The store keeps its transactions private; this module is part of the store.
    async with store._read() as conn:
        rows = (await conn.execute(query)).all()
    return [
        Usage(
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
        for row in rows
    ]
