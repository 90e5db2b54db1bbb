"""Durable executions in the store, on SQLite and PostgreSQL: checkpoint tokens that
a newer invocation revokes, timers that come due, callbacks, the watchdog and the
execution timeout."""

from __future__ import annotations

from dataclasses import replace

from support.stores import Clock, execution_record
from triggerfish.durable import DurableStore, ExecutionRecord
from triggerfish.store import SqlStore


def new_record(execution_id: str = "e1", *, now: float = 1_000.0) -> ExecutionRecord:
    record: ExecutionRecord = execution_record(execution_id, now=now)
    return record


def durable(store: SqlStore, clock: Clock) -> DurableStore:
    return DurableStore(*store.transactions, clock=clock)


async def test_a_newer_invocation_revokes_the_token_of_the_older(store: SqlStore) -> None:
    clock = Clock()
    executions = durable(store, clock)
    await executions.create(new_record())
    first = await executions.begin("e1", watchdog=30)
    second = await executions.begin("e1", watchdog=30)
    step = {"Id": "s1", "Type": "STEP", "Action": "SUCCEED", "Payload": "1"}
    stale = await executions.checkpoint("e1", first.generation, [step])
    assert not stale.accepted
    done = await executions.checkpoint("e1", second.generation, [step])
    assert done.accepted
    found = [doc for _, doc in await executions.operations("e1")]
    assert [(doc["Id"], doc["Type"]) for doc in found] == [("e1", "EXECUTION"), ("s1", "STEP")]
    assert found[0]["ExecutionDetails"] == {"InputPayload": '{"id": 1}'}


async def test_a_wait_comes_due_and_the_next_invocation_sees_it_ended(store: SqlStore) -> None:
    clock = Clock()
    executions = durable(store, clock)
    await executions.create(new_record())
    begun = await executions.begin("e1", watchdog=30)
    wait = {"Id": "w1", "Type": "WAIT", "Action": "START", "WaitOptions": {"WaitSeconds": 60}}
    await executions.checkpoint("e1", begun.generation, [wait])
    pending = await executions.finish(begun, "PENDING", None, None)
    assert pending.wake_at == pending.timeout_at  # only the execution timeout remains
    assert await executions.due() == []
    assert await executions.next_due() == clock.now + 60  # the wait, before the timeout
    clock.now += 60
    assert await executions.due() == [("e1", "orders")]
    await executions.woken("e1")
    assert await executions.due() == []
    assert await executions.next_due() == pending.timeout_at
    statuses = {doc["Id"]: doc["Status"] for _, doc in await executions.operations("e1")}
    assert statuses["w1"] == "SUCCEEDED"


async def test_a_completed_callback_wakes_its_execution_once(store: SqlStore) -> None:
    clock = Clock()
    executions = durable(store, clock)
    await executions.create(new_record())
    begun = await executions.begin("e1", watchdog=30)
    callback = {"Id": "c1", "Type": "CALLBACK", "Action": "START"}
    done = await executions.checkpoint("e1", begun.generation, [callback])
    callback_id = done.documents[0]["CallbackDetails"]["CallbackId"]
    await executions.finish(begun, "PENDING", None, None)
    assert await executions.due() == []
    await executions.complete_callback(callback_id, result='"yes"')
    assert await executions.due() == [("e1", "orders")]


async def test_an_invocation_that_never_reports_back_is_woken_then_the_execution_fails(
    store: SqlStore,
) -> None:
    clock = Clock()
    executions = durable(store, clock)
    await executions.create(new_record())
    await executions.begin("e1", watchdog=30)
    clock.now += 31
    assert await executions.due() == [("e1", "orders")]
    error = {"ErrorType": "Crashed", "ErrorMessage": "killed"}
    record = await executions.begin("e1", watchdog=30)
    for _ in range(3):
        record = await executions.failed(record, error, attempts=3)
    assert record.status == "FAILED"
    assert record.error == error


async def test_an_execution_past_its_timeout_ends_timed_out(store: SqlStore) -> None:
    clock = Clock()
    executions = durable(store, clock)
    await executions.create(new_record())
    clock.now += 3600
    record = await executions.begin("e1", watchdog=30)
    assert record.status == "TIMED_OUT"
    assert record.ended_at == clock.now


async def test_a_start_by_name_happens_once(store: SqlStore) -> None:
    executions = durable(store, Clock())
    first, created = await executions.create(new_record("e1"))
    again, created_again = await executions.create(replace(new_record("e2"), name="e1"))
    assert created
    assert not created_again
    assert again.id == first.id
