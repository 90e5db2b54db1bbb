"""A SqliteBus under steady publishing stays the same size once its topic's retention
and the dedupe window are reached: every table that grows is trimmed, and the pages
freed go back to the filesystem."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from triggerfish.bus.sqlite import SqliteBus
from triggerfish.clock import ManualClock
from triggerfish.events.model import Event
from triggerfish.store.retention import incremental_vacuum

RETENTION = 60.0
WINDOW = 120.0
PER_SECOND = 20


def rows(path: Path) -> dict[str, int]:
    with closing(sqlite3.connect(path)) as conn:
        return {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("events", "dedupe", "pending")
        }


async def test_steady_publishing_reaches_a_size_it_keeps(tmp_path: Path) -> None:
    path = tmp_path / "bus.db"
    clock = ManualClock()
    sizes: list[int] = []
    counts: list[dict[str, int]] = []
    async with SqliteBus(path, clock=clock.time, dedupe_window=WINDOW) as bus:
        await bus.create_topic("orders", retention=RETENTION)
        await bus.subscribe("orders", "billing", start="earliest")
        n = 0
        for second in range(400):
            events = [Event(id=f"e-{n + i}", source="/shop", type="t") for i in range(PER_SECOND)]
            n += PER_SECOND
            await bus.publish("orders", events)
            found = await bus.fetch("orders", "billing", max_count=100, lease=30.0)
            await bus.ack("orders", "billing", [d.offset for d in found])
            clock.advance(1.0)
            if second % 10 == 9:  # a housekeeping pass
                await bus.trim()
                incremental_vacuum(str(path), pages=100_000)
                sizes.append(path.stat().st_size)
                counts.append(rows(path))
    # Past the dedupe window (the longer bound), nothing grows any more.
    # (Checkpoints and the free list move it a little either way from pass to pass.)
    settled = sizes[int(WINDOW / 10) + 1 :]
    third = len(settled) // 3
    assert max(settled[-third:]) <= max(settled[:third]) * 1.2, sizes
    assert all(c["events"] <= (RETENTION + 10) * PER_SECOND for c in counts), counts
    assert all(c["dedupe"] <= (WINDOW + 10) * PER_SECOND for c in counts), counts
    assert counts[-1]["pending"] == 0
