"""Several stores on one database, as the nodes of a cluster hold them, and a clock
the test moves for what they stamp."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import replace
from typing import Any

from triggerfish.store import SqlStore


class Clock:
    """A clock the test moves."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@asynccontextmanager
async def nodes(url: str, count: int, clock: Clock | None = None) -> AsyncIterator[list[SqlStore]]:
    """``count`` stores on the database at ``url`` (separate connection pools)."""
    async with AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(
                SqlStore(url, clock=clock) if clock is not None else SqlStore(url)
            )
            for _ in range(count)
        ]


def execution_record(execution_id: str = "e1", *, now: float = 1_000.0, **changes: Any) -> Any:
    """A running durable execution of ``orders`` started at ``now``; ``changes`` set
    other fields."""
    from triggerfish.durable import ExecutionRecord

    record = ExecutionRecord(
        id=execution_id,
        function="orders",
        name=execution_id,
        version="abcdefabcdef",
        qualifier="1",
        status="RUNNING",
        input='{"id": 1}',
        result=None,
        error=None,
        started_at=now,
        ended_at=None,
        timeout_at=now + 3600,
        retention=86400,
        generation=0,
        failures=0,
        wake_at=None,
    )
    return replace(record, **changes)
