"""Several stores on one database, as the nodes of a cluster hold them, and a clock
the test moves for what they stamp."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

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
