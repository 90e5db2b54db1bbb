"""``DurableStore``: durable executions and their operations in the store, shared by
every node of a cluster.

Every invocation of an execution *begins* a new generation: its checkpoint token names
it, and a checkpoint made with an older token is refused (the SDK then ends that
invocation as pending), so two invocations of one execution never both write. Timers
are rows: an operation's ``due_at`` (a wait, a step's retry, a callback's timeout) and
an execution's ``wake_at`` (run it again should its invocation never report back, or
when its execution timeout passes). Times are Unix seconds from the store's clock.

After every write the store calls ``changed`` (which the leader's timer watcher sets to
wake itself): a write may have set a timer earlier than the one it sleeps until.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from triggerfish.durable import operations as ops
from triggerfish.errors import ConflictError, NotFoundError
from triggerfish.store import schema as t
from triggerfish.store.documents import Transaction
from triggerfish.store.engine import in_chunks

RUNNING = "RUNNING"
STATUSES = ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "STOPPED")


@dataclass(frozen=True, slots=True)
class ExecutionRecord:
    id: str
    function: str
    name: str
    version: str
    qualifier: str
    status: str
    input: str
    result: str | None
    error: dict[str, Any] | None
    started_at: float
    ended_at: float | None
    timeout_at: float
    retention: int
    generation: int
    failures: int
    wake_at: float | None

    @property
    def ended(self) -> bool:
        return self.status != RUNNING


@dataclass(frozen=True, slots=True)
class Checkpointed:
    """What a checkpoint did: False ``accepted`` when its token was stale (or the
    execution had ended); the documents it changed; the chained invokes to start; the
    execution as the checkpoint left it."""

    accepted: bool
    documents: list[ops.Document]
    invokes: list[tuple[str, str, str]]  # operation id, function, payload
    record: ExecutionRecord | None = None


class DurableStore:
    def __init__(
        self, read: Transaction, write: Transaction, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._read = read
        self._transaction = write
        self.clock = clock
        #: Called after each write of this node (timers may have moved).
        self.changed: Callable[[], None] = lambda: None

    @contextlib.asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        async with self._transaction() as conn:
            yield conn
        self.changed()

    async def create(self, record: ExecutionRecord) -> tuple[ExecutionRecord, bool]:
        """Keep a new execution with its EXECUTION operation; with the name of one that
        exists, that one and False (a start by name happens once)."""
        c = t.durable_executions.c
        async with self._write() as conn:
            found = (
                await conn.execute(
                    sa.select(t.durable_executions).where(
                        c.function == record.function, c.name == record.name
                    )
                )
            ).first()
            if found is not None:
                return _record(found), False
            await conn.execute(t.durable_executions.insert().values(**_row(record)))
            doc = ops.execution_document(record.id, record.input, record.started_at)
            await conn.execute(
                t.durable_operations.insert().values(
                    execution=record.id,
                    id=record.id,
                    position=0,
                    type="EXECUTION",
                    status="STARTED",
                    document=doc,
                )
            )
        return record, True

    async def get(self, execution_id: str) -> ExecutionRecord:
        async with self._read() as conn:
            row = (
                await conn.execute(
                    sa.select(t.durable_executions).where(t.durable_executions.c.id == execution_id)
                )
            ).first()
        if row is None:
            raise NotFoundError(f"durable execution {execution_id!r} does not exist")
        return _record(row)

    async def find(
        self,
        function: str | None = None,
        *,
        statuses: Sequence[str] = (),
        limit: int = 100,
        before: float | None = None,
        name: str | None = None,
    ) -> list[ExecutionRecord]:
        """The newest first, at most ``limit``, started before ``before`` when given."""
        c = t.durable_executions.c
        query = sa.select(t.durable_executions).order_by(c.started_at.desc(), c.id.desc())
        if function is not None:
            query = query.where(c.function == function)
        if statuses:
            query = query.where(c.status.in_(list(statuses)))
        if before is not None:
            query = query.where(c.started_at < before)
        if name is not None:
            query = query.where(c.name == name)
        async with self._read() as conn:
            rows = (await conn.execute(query.limit(limit))).all()
        return [_record(row) for row in rows]

    async def operations(
        self, execution_id: str, *, after: int = -1, limit: int = 1000
    ) -> list[tuple[int, ops.Document]]:
        """Its operations in the order they were first checkpointed, with positions."""
        c = t.durable_operations.c
        async with self._read() as conn:
            rows = (
                await conn.execute(
                    sa.select(c.position, c.document)
                    .where(c.execution == execution_id, c.position > after)
                    .order_by(c.position)
                    .limit(limit)
                )
            ).all()
        return [(row.position, dict(row.document)) for row in rows]

    async def begin(self, execution_id: str, *, watchdog: float) -> ExecutionRecord:
        """Start a new invocation of the execution: fire its timers that are due, move
        its generation on (older tokens are refused from now) and wake it after
        ``watchdog`` seconds should this invocation never report back. An execution
        whose timeout passed ends ``TIMED_OUT`` instead."""
        now = self.clock()
        c = t.durable_executions.c
        async with self._write() as conn:
            record = await _locked(conn, execution_id)
            if record.ended:
                return record
            if now >= record.timeout_at:
                await _end(conn, record, "TIMED_OUT", None, _timeout_error(), now)
                return await _locked(conn, execution_id)
            await _fire_due(conn, execution_id, now)
            generation, wake_at = record.generation + 1, now + watchdog
            await conn.execute(
                t.durable_executions.update()
                .where(c.id == execution_id)
                .values(generation=generation, wake_at=wake_at)
            )
            return replace(record, generation=generation, wake_at=wake_at)

    async def checkpoint(
        self, execution_id: str, generation: int, updates: Sequence[Mapping[str, Any]]
    ) -> Checkpointed:
        """Apply checked ``updates`` in order, unless ``generation`` is no longer the
        execution's (then nothing is written)."""
        now = self.clock()
        c = t.durable_operations.c
        async with self._write() as conn:
            # One statement reads the execution and where its log ends, one the
            # operations the updates touch: a checkpoint is one short transaction.
            record, position = await _locked_with_end(conn, execution_id)
            if record.ended or record.generation != generation:
                return Checkpointed(False, [], [], record)
            ids = list({update["Id"] for update in updates})
            current: dict[str, ops.Document] = {}
            if ids:
                rows = (
                    await conn.execute(
                        sa.select(c.id, c.document).where(
                            c.execution == execution_id, c.id.in_(ids)
                        )
                    )
                ).all()
                current = {row.id: dict(row.document) for row in rows}
            changed: dict[str, ops.Change] = {}
            invokes: list[tuple[str, str, str]] = []
            fresh: set[str] = set()
            outcome: tuple[str, str | None, ops.Document | None] | None = None
            for update in updates:
                op_id = update["Id"]
                before = current.get(op_id)
                change = ops.apply(update, before, now)
                previous = changed.get(op_id)
                if previous is not None and change.callback is None:
                    change.callback = previous.callback
                if before is None:
                    fresh.add(op_id)
                current[op_id] = change.document
                changed[op_id] = change
                if change.invoke is not None:
                    invokes.append((op_id, *change.invoke))
                if change.outcome is not None:
                    outcome = change.outcome
            inserts: list[dict[str, Any]] = []
            for op_id, change in changed.items():
                doc = change.document
                values = {
                    "type": doc["Type"],
                    "status": doc["Status"],
                    "document": doc,
                    "due_at": change.due_at,
                }
                if op_id in fresh:
                    position += 1
                    inserts.append(
                        {
                            "execution": execution_id,
                            "id": op_id,
                            "position": position,
                            "callback": change.callback,
                            **values,
                        }
                    )
                else:
                    await conn.execute(
                        t.durable_operations.update()
                        .where(c.execution == execution_id, c.id == op_id)
                        .values(**values)
                    )
            if inserts:
                await conn.execute(t.durable_operations.insert(), inserts)
            if outcome is not None:
                status, result, error = outcome
                await _end(conn, record, status, result, error, now)
                record = replace(
                    record, status=status, result=result, error=error, ended_at=now, wake_at=None
                )
        documents = [change.document for change in changed.values()]
        return Checkpointed(True, documents, invokes, record)

    async def finish(
        self, record: ExecutionRecord, status: str, result: str | None, error: dict[str, Any] | None
    ) -> ExecutionRecord:
        """Record how the invocation of ``record`` (as ``begin`` returned it) ended:
        ``SUCCEEDED`` or ``FAILED`` end the execution, ``PENDING`` leaves it to its
        timers and callbacks (and to its timeout)."""
        now = self.clock()
        c = t.durable_executions.c
        async with self._write() as conn:
            current = await _locked(conn, record.id)
            if current.ended or current.generation != record.generation:
                return current
            if status == "PENDING":
                await conn.execute(
                    t.durable_executions.update()
                    .where(c.id == record.id)
                    .values(wake_at=current.timeout_at, failures=0)
                )
                return replace(current, wake_at=current.timeout_at, failures=0)
            await _end(conn, current, status, result, error, now)
            return replace(
                current, status=status, result=result, error=error, ended_at=now, wake_at=None
            )

    async def failed(
        self, record: ExecutionRecord, error: dict[str, Any], *, attempts: int
    ) -> ExecutionRecord:
        """The invocation of ``record`` failed (crashed, timed out, or the SDK gave
        up): run it again after a back-off, or end the execution ``FAILED`` after
        ``attempts`` failures in a row."""
        now = self.clock()
        c = t.durable_executions.c
        async with self._write() as conn:
            current = await _locked(conn, record.id)
            if current.ended or current.generation != record.generation:
                return current
            failures = current.failures + 1
            if failures >= attempts:
                await _end(conn, current, "FAILED", None, error, now)
            else:
                await conn.execute(
                    t.durable_executions.update()
                    .where(c.id == record.id)
                    .values(failures=failures, wake_at=now + 2.0 ** (failures - 1))
                )
            return await _locked(conn, record.id)

    async def stop(self, execution_id: str, error: dict[str, Any] | None) -> ExecutionRecord:
        now = self.clock()
        async with self._write() as conn:
            record = await _locked(conn, execution_id)
            if record.ended:
                raise ConflictError(
                    f"durable execution {execution_id!r} already ended {record.status}"
                )
            await _end(conn, record, "STOPPED", None, error, now)
            return await _locked(conn, execution_id)

    async def complete_callback(
        self,
        callback_id: str,
        *,
        result: str | None = None,
        error: dict[str, Any] | None = None,
        heartbeat: bool = False,
    ) -> ExecutionRecord:
        """Complete (or, with ``heartbeat``, keep alive) the callback; it is due at
        once, so the leader's next pass resumes its execution."""
        now = self.clock()
        c = t.durable_operations.c
        async with self._write() as conn:
            row = (
                await conn.execute(
                    sa.select(c.execution, c.id, c.document).where(c.callback == callback_id)
                )
            ).first()
            if row is None:
                raise NotFoundError(f"callback {callback_id!r} does not exist")
            record = await _locked(conn, row.execution)
            doc = dict(row.document)
            if record.ended or doc.get("Status") != "STARTED":
                raise ConflictError(
                    f"callback {callback_id!r} is no longer waiting (it is "
                    f"{doc.get('Status', '?')}, its execution {record.status})"
                )
            if heartbeat:
                due = ops.callback_due(doc.get(ops.PRIVATE) or {}, now)
                values: dict[str, Any] = {"due_at": due}
            else:
                doc = ops.complete_callback(doc, now, result=result, error=error)
                values = {"document": doc, "status": doc["Status"], "due_at": now}
            await conn.execute(
                t.durable_operations.update()
                .where(c.execution == row.execution, c.id == row.id)
                .values(**values)
            )
        return record

    async def execution_of_callback(self, callback_id: str) -> ExecutionRecord:
        c = t.durable_operations.c
        async with self._read() as conn:
            execution_id = (
                await conn.execute(sa.select(c.execution).where(c.callback == callback_id))
            ).scalar()
        if execution_id is None:
            raise NotFoundError(f"callback {callback_id!r} does not exist")
        return await self.get(execution_id)

    async def complete_invoke(
        self, execution_id: str, op_id: str, *, result: str | None, error: dict[str, Any] | None
    ) -> None:
        now = self.clock()
        c = t.durable_operations.c
        async with self._write() as conn:
            row = (
                await conn.execute(
                    sa.select(c.document).where(c.execution == execution_id, c.id == op_id)
                )
            ).first()
            if row is None or row.document.get("Status") != "STARTED":
                return
            doc = ops.complete_invoke(dict(row.document), now, result=result, error=error)
            await conn.execute(
                t.durable_operations.update()
                .where(c.execution == execution_id, c.id == op_id)
                .values(document=doc, status=doc["Status"], due_at=now)
            )

    async def due(self, *, limit: int = 500) -> list[tuple[str, str]]:
        """The running executions (id, function) with a timer due now."""
        now = self.clock()
        e, o = t.durable_executions.c, t.durable_operations.c
        async with self._read() as conn:
            timers = (
                await conn.execute(
                    sa.select(e.id, e.function)
                    .select_from(
                        t.durable_operations.join(t.durable_executions, e.id == o.execution)
                    )
                    .where(o.due_at <= now, e.status == RUNNING)
                    .distinct()
                    .limit(limit)
                )
            ).all()
            woken = (
                await conn.execute(
                    sa.select(e.id, e.function)
                    .where(e.wake_at <= now, e.status == RUNNING)
                    .limit(limit)
                )
            ).all()
        found = {(row.id, row.function) for row in [*timers, *woken]}
        return sorted(found)

    async def next_due(self) -> float | None:
        """When the earliest timer of a running execution comes due; None without one."""
        e, o = t.durable_executions.c, t.durable_operations.c
        async with self._read() as conn:
            timer = await conn.scalar(
                sa.select(sa.func.min(o.due_at))
                .select_from(t.durable_operations.join(t.durable_executions, e.id == o.execution))
                .where(o.due_at.is_not(None), e.status == RUNNING)
            )
            wake = await conn.scalar(
                sa.select(sa.func.min(e.wake_at)).where(e.wake_at.is_not(None), e.status == RUNNING)
            )
        times = [when for when in (timer, wake) if when is not None]
        return min(times) if times else None

    async def woken(self, execution_id: str) -> None:
        """A resume of the execution is on the bus: fire its due timers, and clear its
        watchdog should it have come due."""
        now = self.clock()
        c = t.durable_executions.c
        async with self._write() as conn:
            await _fire_due(conn, execution_id, now)
            await conn.execute(
                t.durable_executions.update()
                .where(c.id == execution_id, c.wake_at <= now)
                .values(wake_at=None)
            )

    async def forget_ended(self) -> int:
        """Drop the executions whose retention ran out since they ended."""
        now = self.clock()
        c = t.durable_executions.c
        async with self._write() as conn:
            ids = (
                (
                    await conn.execute(
                        sa.select(c.id)
                        .where(c.ended_at.is_not(None), c.ended_at + c.retention < now)
                        .limit(1000)
                    )
                )
                .scalars()
                .all()
            )
            for chunk in in_chunks(ids):
                operations = t.durable_operations.c.execution.in_(chunk)
                await conn.execute(t.durable_operations.delete().where(operations))
                await conn.execute(t.durable_executions.delete().where(c.id.in_(chunk)))
        return len(ids)


async def _locked(conn: AsyncConnection, execution_id: str) -> ExecutionRecord:
    query = sa.select(t.durable_executions).where(t.durable_executions.c.id == execution_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    if row is None:
        raise NotFoundError(f"durable execution {execution_id!r} does not exist")
    return _record(row)


async def _locked_with_end(conn: AsyncConnection, execution_id: str) -> tuple[ExecutionRecord, int]:
    """The execution, locked as ``_locked`` does, and the position of its last
    operation."""
    o = t.durable_operations.c
    end = sa.select(sa.func.max(o.position)).where(o.execution == execution_id).scalar_subquery()
    query = sa.select(t.durable_executions, end.label("log_end")).where(
        t.durable_executions.c.id == execution_id
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(of=t.durable_executions)
    row = (await conn.execute(query)).first()
    if row is None:
        raise NotFoundError(f"durable execution {execution_id!r} does not exist")
    return _record(row), row.log_end or 0


async def _fire_due(conn: AsyncConnection, execution_id: str, now: float) -> None:
    c = t.durable_operations.c
    rows = (
        await conn.execute(
            sa.select(c.id, c.document).where(c.execution == execution_id, c.due_at <= now)
        )
    ).all()
    for row in rows:
        doc = ops.fire(dict(row.document), now)
        values: dict[str, Any] = {"due_at": None}
        if doc is not None:
            values.update(document=doc, status=doc["Status"])
        await conn.execute(
            t.durable_operations.update()
            .where(c.execution == execution_id, c.id == row.id)
            .values(**values)
        )


async def _end(
    conn: AsyncConnection,
    record: ExecutionRecord,
    status: str,
    result: str | None,
    error: dict[str, Any] | None,
    now: float,
) -> None:
    e, o = t.durable_executions.c, t.durable_operations.c
    await conn.execute(
        t.durable_executions.update()
        .where(e.id == record.id)
        .values(status=status, result=result, error=error, ended_at=now, wake_at=None)
    )
    # Nothing of an ended execution runs again: its timers are dropped.
    await conn.execute(
        t.durable_operations.update()
        .where(o.execution == record.id, o.due_at.is_not(None))
        .values(due_at=None)
    )
    row = (
        await conn.execute(sa.select(o.document).where(o.execution == record.id, o.id == record.id))
    ).first()
    if row is not None and row.document.get("Status") not in ops.ENDED:
        doc = {**row.document, "Status": status, "EndTimestamp": now}
        await conn.execute(
            t.durable_operations.update()
            .where(o.execution == record.id, o.id == record.id)
            .values(document=doc, status=status)
        )


def _timeout_error() -> dict[str, Any]:
    return {
        "ErrorType": "Execution.Timeout",
        "ErrorMessage": "the execution ran past its execution_timeout",
    }


def _row(record: ExecutionRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in ExecutionRecord.__slots__}


def _record(row: Any) -> ExecutionRecord:
    m = row._mapping
    return ExecutionRecord(**{name: m[name] for name in ExecutionRecord.__slots__})
