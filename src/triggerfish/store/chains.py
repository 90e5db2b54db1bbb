"""``Chains``: the events and invocations of one chain, read by its correlation id.

A chain is everything that follows from one event: the invocations that handled it,
the events they emitted, the invocations that handled those, and so on. Every event of
it carries the id of the first as its ``correlationid``; the store keeps that id with
each invocation record (``tf_invocations.correlation``) and each event of a chain once
(``tf_chain_events``), so a chain is two index range reads, however many invocations
the store holds.

A lone first step (an invocation that handled an event without ``correlationid``,
succeeded and emitted nothing) names no chain in its record: an index entry for every
such record would cost each invocation a write at a random place of the index when
event ids are random (UUIDs). Such a step is found by its event: among the records
without a chain, those whose ``event_ids`` hold it, from the event's time on when its
id tells that time (``ids.id_time``), else by a scan.

Events are written with the invocation records that handled or emitted them
(``observe/recorder.py``), so the two can be written in either order: the downstream
invocation's record may reach the store before the record of the one that emitted
its event. An event written first without the invocation that emitted it gets it when
that record comes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa

from triggerfish.ids import id_time
from triggerfish.store import schema as t
from triggerfish.store.documents import Transaction
from triggerfish.store.engine import dialect_insert
from triggerfish.store.records import ChainEvent, Status


@dataclass(frozen=True, slots=True)
class ChainStep:
    """An invocation of a chain: the fields a chain shows, without logs or result."""

    id: str
    function: str
    version: str
    status: Status
    started_at: float
    duration_ms: float
    cold_start: bool
    attempt: int
    error_type: str | None
    event_ids: tuple[str, ...]
    trigger: str | None


@dataclass(frozen=True, slots=True)
class ChainRows:
    """What the store holds of one chain, at most ``limit`` of each kind, oldest first
    (ids sort by time); ``more`` when it holds more of either."""

    correlation: str
    events: list[ChainEvent]
    steps: list[ChainStep]
    more: bool


_STEP_COLUMNS = tuple(t.invocations.c[name] for name in ChainStep.__slots__)


class Chains:
    def __init__(
        self, read: Transaction, write: Transaction, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._read = read
        self._write = write
        self._clock = clock

    async def record(self, events: Sequence[ChainEvent]) -> None:
        """Keep ``events``; an event kept already is left as it is, but for the
        invocation that emitted it, when it was not known before."""
        rows = _merged(events)
        if not rows:
            return
        now = self._clock()
        params = [
            {
                "correlation": e.correlation,
                "id": e.id,
                "source": e.source,
                "topic": e.topic,
                "type": e.type,
                "time": e.time,
                "invocation": e.invocation,
                "recorded_at": now,
            }
            for e in rows
        ]
        async with self._write() as conn:
            insert = dialect_insert(conn, t.chain_events)
            c = t.chain_events.c
            # One statement for any number of rows (executemany): compiled once.
            upsert = insert.on_conflict_do_update(
                index_elements=[c.correlation, c.id],
                set_={"invocation": insert.excluded.invocation},
                where=insert.excluded.invocation.is_not(None) & c.invocation.is_(None),
            )
            await conn.execute(upsert, params)

    async def correlation_of(self, id: str) -> tuple[str | None, ChainStep | None] | None:
        """The chain of the invocation or event ``id``: its correlation id (None for a
        direct invocation, which belongs to no chain) and, for an invocation, its step.
        None when the store knows neither an invocation nor an event of that id."""
        async with self._read() as conn:
            row = (
                await conn.execute(
                    sa.select(*_STEP_COLUMNS, t.invocations.c.correlation).where(
                        t.invocations.c.id == id
                    )
                )
            ).first()
            if row is not None:
                step = _step(row)
                if row.correlation is None and step.trigger and step.event_ids:
                    return step.event_ids[0], step  # a lone first step: its event's chain
                return row.correlation, step
            c = t.chain_events.c
            correlation = await conn.scalar(sa.select(c.correlation).where(c.id == id).limit(1))
            if correlation is not None:
                return str(correlation), None
            # The first event of a chain whose own row is not written yet, or of lone
            # steps only.
            i = t.invocations.c
            first = await conn.scalar(sa.select(i.id).where(i.correlation == id).limit(1))
            if first is None:
                first = await conn.scalar(sa.select(i.id).where(_lone_steps(id)).limit(1))
        return (id, None) if first is not None else None

    async def rows(self, correlation: str, *, limit: int) -> ChainRows:
        e, i = t.chain_events.c, t.invocations.c
        async with self._read() as conn:
            events = await conn.execute(
                sa.select(t.chain_events)
                .where(e.correlation == correlation)
                .order_by(e.correlation, e.id)
                .limit(limit + 1)
            )
            found = [_event(row) for row in events]
            steps = await conn.execute(
                sa.select(*_STEP_COLUMNS)
                .where(i.correlation == correlation)
                .order_by(i.correlation, i.id)
                .limit(limit + 1)
            )
            taken = [_step(row) for row in steps]
            lone = await conn.execute(
                sa.select(*_STEP_COLUMNS)
                .where(_lone_steps(correlation))
                .order_by(i.started_at)
                .limit(limit + 1)
            )
            taken = sorted([*taken, *(_step(row) for row in lone)], key=lambda step: step.id)
        more = len(found) > limit or len(taken) > limit
        return ChainRows(correlation, found[:limit], taken[:limit], more)

    async def forget(self, until: float) -> int:
        """Forget the events kept before ``until`` (with the invocation records of the
        same age: ``SqlStore.delete_invocations``); returns how many."""
        async with self._write() as conn:
            done = await conn.execute(
                t.chain_events.delete().where(t.chain_events.c.recorded_at < until)
            )
            return int(done.rowcount)


def _lone_steps(event_id: str) -> sa.ColumnElement[bool]:
    """The records of lone first steps that handled ``event_id`` (see the module's
    docstring)."""
    i = t.invocations.c
    quoted = orjson.dumps(event_id).decode()  # as the id is spelled in ``event_ids``
    needle = quoted.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    found = i.correlation.is_(None) & sa.cast(i.event_ids, sa.Text).like(f"%{needle}%", escape="\\")
    try:
        made = id_time(event_id)
    except (ValueError, KeyError):  # not an id that tells its time: a scan
        return found
    if made > time.time() + 60:  # not a time that bounds anything
        return found
    # Not before the event was made (less a minute for other nodes' clocks).
    return found & (i.started_at >= made - 60)


def _merged(events: Sequence[ChainEvent]) -> list[ChainEvent]:
    """One row per event of a chain: an ``INSERT ... ON CONFLICT`` on PostgreSQL may
    not touch a row twice. The row that names the emitting invocation wins."""
    by_key: dict[tuple[str, str], ChainEvent] = {}
    for event in events:
        key = (event.correlation, event.id)
        kept = by_key.get(key)
        if kept is None or (kept.invocation is None and event.invocation is not None):
            by_key[key] = event
    return list(by_key.values())


def _event(row: Any) -> ChainEvent:
    return ChainEvent(
        correlation=row.correlation,
        id=row.id,
        source=row.source,
        topic=row.topic,
        type=row.type,
        time=row.time,
        invocation=row.invocation,
    )


def _step(row: Any) -> ChainStep:
    return ChainStep(
        id=row.id,
        function=row.function,
        version=row.version,
        status=row.status,
        started_at=row.started_at,
        duration_ms=row.duration_ms,
        cold_start=bool(row.cold_start),
        attempt=row.attempt,
        error_type=row.error_type,
        event_ids=tuple(row.event_ids),
        trigger=row.trigger,
    )
