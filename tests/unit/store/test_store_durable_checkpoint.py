"""One checkpoint is one transaction that says how it left the execution: several new
operations keep the order they were sent in, and the execution's end is in the answer
(the SDK's next token depends on it) without another read."""

from __future__ import annotations

from support.stores import Clock, execution_record
from triggerfish.durable import DurableStore, ExecutionRecord
from triggerfish.store import SqlStore


def new_record(execution_id: str, *, now: float = 1_000.0) -> ExecutionRecord:
    record: ExecutionRecord = execution_record(
        execution_id, now=now, input="{}", generation=1, wake_at=now + 35
    )
    return record


async def test_new_operations_of_one_checkpoint_keep_their_order(store: SqlStore) -> None:
    executions = DurableStore(*store.transactions, clock=Clock())
    await executions.create(new_record("c1"))
    updates = [
        {"Id": f"s{n}", "Type": "STEP", "Action": "SUCCEED", "Payload": str(n)} for n in (3, 1, 2)
    ]
    done = await executions.checkpoint("c1", 1, updates)
    assert done.accepted
    assert done.record is not None
    assert not done.record.ended
    more = await executions.checkpoint(
        "c1", 1, [{"Id": "s4", "Type": "STEP", "Action": "SUCCEED", "Payload": "4"}]
    )
    assert more.accepted
    found = await executions.operations("c1")
    assert [doc["Id"] for _, doc in found] == ["c1", "s3", "s1", "s2", "s4"]
    assert [position for position, _ in found] == [0, 1, 2, 3, 4]


async def test_a_checkpoint_that_ends_the_execution_answers_it_ended(store: SqlStore) -> None:
    executions = DurableStore(*store.transactions, clock=Clock())
    await executions.create(new_record("c2"))
    end = {"Id": "c2", "Type": "EXECUTION", "Action": "SUCCEED", "Payload": '"done"'}
    done = await executions.checkpoint("c2", 1, [end])
    assert done.record is not None
    assert done.record.status == "SUCCEEDED"
    assert done.record == await executions.get("c2")
    late = await executions.checkpoint("c2", 1, [end])
    assert not late.accepted
