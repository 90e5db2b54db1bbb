"""A topic's rate: events published per second over the last minute, on the memory bus
and the embedded SQLite bus, with a clock the test moves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from triggerfish.bus.base import Bus
from triggerfish.bus.memory import MemoryBus
from triggerfish.bus.sqlite import SqliteBus
from triggerfish.control.topics import Topics
from triggerfish.events.model import Event


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["memory", "sqlite"])
async def bus(request: pytest.FixtureRequest, tmp_path: Path, clock: Clock) -> AsyncIterator[Bus]:
    opened: Bus = (
        MemoryBus(clock=clock)
        if request.param == "memory"
        else SqliteBus(tmp_path / "bus.db", clock=clock)
    )
    await opened.start()
    try:
        yield opened
    finally:
        await opened.stop()


async def publish(bus: Bus, count: int, prefix: str) -> None:
    events = [Event(id=f"{prefix}-{n}", source="t", type="tick") for n in range(count)]
    await bus.publish("ticks", events)


async def test_the_rate_counts_the_events_of_the_last_minute(bus: Bus, clock: Clock) -> None:
    topics = Topics(bus, object(), clock=clock)  # type: ignore[arg-type]  # no trigger here
    await bus.create_topic("ticks", retention=None)
    assert await topics.rate(await topics.info("ticks")) == 0.0

    await publish(bus, 30, "early")
    clock.now = 1_050.0
    await publish(bus, 90, "late")
    clock.now = 1_070.0

    assert await topics.rate(await topics.info("ticks")) == pytest.approx(90 / 60)
    clock.now = 1_200.0
    assert await topics.rate(await topics.info("ticks")) == 0.0
