"""SqliteBus survives ``kill -9``: committed events stay, dead leases come back."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest

from triggerfish.bus.base import Delivery
from triggerfish.bus.sqlite import SqliteBus

CHILD = Path(__file__).with_name("crash_child.py")
LEASE = 0.5


# 3,000 more events take some 250 commits: the WAL is checkpointed (on its own
# thread, beside the commits) a few times before the kill.
@pytest.mark.parametrize("more", [60, 3000])
async def test_kill_9_loses_no_committed_event_and_dead_leases_return(
    tmp_path: Path, more: int
) -> None:
    path = tmp_path / "bus.db"
    child = await asyncio.create_subprocess_exec(
        sys.executable, str(CHILD), str(path), str(LEASE), stdout=asyncio.subprocess.PIPE
    )
    assert child.stdout is not None
    published: set[int] = set()
    leased: set[int] = set()
    ready_at: int | None = None
    try:
        # Kill it while it is busy publishing, a little after it leased its events.
        while ready_at is None or len(published) < ready_at + more:
            line = (await asyncio.wait_for(child.stdout.readline(), 60)).decode().split()
            assert line, "the child exited before it was killed"
            if line[0] == "published":
                published.add(int(line[1]))
            elif line[0] == "leased":
                leased.add(int(line[1]))
            elif line[0] == "ready":
                ready_at = len(published)
        child.send_signal(signal.SIGKILL)
    finally:
        if child.returncode is None:
            child.kill()
        await child.wait()
    assert child.returncode != 0  # killed, not finished (asyncio may report -9 or 255)
    assert len(leased) == 5

    async with SqliteBus(path) as bus:
        stored = {s.offset for s in await bus.read("crash", limit=1_000_000)}
        assert published <= stored

        delivered: dict[int, Delivery] = {}
        # Every published event, a thousand at a time; the dead leases among them end
        # within LEASE seconds of the kill (before it, when publishing the rest was slow).
        for _ in range(10):
            if published <= delivered.keys():
                break
            for d in await bus.fetch("crash", "workers", max_count=1000, lease=60, wait=30):
                delivered[d.offset] = d
        assert {o for o, d in delivered.items() if d.attempt == 2} == leased
        assert all(delivered[o].attempt == 1 for o in published - leased)
