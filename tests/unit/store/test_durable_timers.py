"""The leader's timer watcher on a single node: it sleeps until the next timer comes
due (or until a write of the node sets an earlier one), instead of asking the store
several times a second, and fires the timer when it comes due."""

from __future__ import annotations

import time
from typing import Any

from support.stores import execution_record
from support.waiting import until
from triggerfish.durable import DurableStore
from triggerfish.durable.executions import DurableExecutions
from triggerfish.store import SqlStore


async def test_a_wait_fires_when_due_and_the_store_is_not_asked_in_between(
    store: SqlStore,
) -> None:
    durable = DurableStore(*store.transactions)
    published: list[tuple[str, float]] = []
    asked: list[float] = []

    async def publish(function: str, payload: bytes) -> None:
        published.append((function, time.time()))

    async def invoke(function: str, payload: bytes) -> Any:
        raise AssertionError("no chained invoke here")

    due = durable.due

    async def counted_due(**kwargs: Any) -> list[tuple[str, str]]:
        asked.append(time.time())
        return await due(**kwargs)

    durable.due = counted_due  # type: ignore[method-assign]
    executions = DurableExecutions(
        durable,
        version_of=lambda *_: None,  # type: ignore[arg-type,return-value]
        publish=publish,
        invoke=invoke,
        leading=lambda: True,
        region="us-east-1",
        account="000000000000",
    )
    await executions.start()
    try:
        await durable.create(execution_record("e1", now=time.time()))
        begun = await durable.begin("e1", watchdog=30)
        wait = {"Id": "w1", "Type": "WAIT", "Action": "START", "WaitOptions": {"WaitSeconds": 1}}
        started = time.time()
        await durable.checkpoint("e1", begun.generation, [wait])
        await durable.finish(begun, "PENDING", None, None)
        written = time.time()
        await until(lambda: bool(published), within=5.0, what="the wait's resume")
    finally:
        await executions.stop()
    function, fired = published[0]
    assert function == "orders"
    assert started + 1.0 <= fired < written + 1.0 + 0.5  # when due, not before
    # Between the last write and the timer the watcher slept: no pass asked the store.
    quiet = [at for at in asked if written + 0.1 < at < fired - 0.1]
    assert quiet == [], f"the store was asked {len(quiet)} times while nothing was due"
