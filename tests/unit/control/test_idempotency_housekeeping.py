"""The housekeeping pass forgets expired idempotency records and ended claims, and
keeps the records that are still in force."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from triggerfish.bus.memory import MemoryBus
from triggerfish.control import Housekeeping
from triggerfish.control.idempotency import Idempotency
from triggerfish.store import SqlStore


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_expired_records_are_forgotten_and_live_ones_kept(tmp_path: Path) -> None:
    clock = Clock()
    async with SqlStore(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}", clock=clock) as store:
        records = Idempotency(store, clock=clock)
        done = await records.claim("pay", "order-1", lease=30)
        assert done.token is not None
        await records.complete("pay", "order-1", done.token, {"paid": 1}, expires=60)
        await records.claim("pay", "abandoned", lease=30)  # its environment died
        await records.claim("pay", "running", lease=600)
        clock.now += 60

        housekeeping = Housekeeping(MemoryBus(), interval=0.01, idempotency=records)
        await housekeeping.start()
        try:
            deadline = time.monotonic() + 5
            while await store.idempotency.count("pay") > 1:
                assert time.monotonic() < deadline, "expired records were not forgotten"
                await asyncio.sleep(0.01)
        finally:
            await housekeeping.stop()
        running = await records.claim("pay", "running", lease=30)
        assert running.status == "in_progress"
