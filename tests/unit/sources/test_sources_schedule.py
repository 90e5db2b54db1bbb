"""The schedule source on a real bus and store, with a clock the test moves."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from triggerfish.bus.sqlite import SqliteBus
from triggerfish.errors import ConfigError
from triggerfish.sources.base import SourceContext
from triggerfish.sources.schedule import ScheduleKind, ScheduleSource
from triggerfish.store.sql import SqlStore

START = datetime(2024, 5, 1, 12, 0, 0, 250_000, tzinfo=UTC)
TRIGGER = "tick.schedule"
TOPIC = "_schedule.tick.schedule"


class MemoryClock:
    """A clock that moves only when the test says so."""

    def __init__(self, now: datetime) -> None:
        self._now = now
        self._moved = asyncio.Event()

    def now(self) -> datetime:
        return self._now

    async def sleep_until(self, when: datetime) -> None:
        while self._now < when:
            self._moved.clear()
            await self._moved.wait()

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
        self._moved.set()


@dataclass
class Rig:
    bus: SqliteBus
    store: SqlStore
    clock: MemoryClock
    data_dir: Path

    def source(self, options: Mapping[str, Any], **config: Any) -> ScheduleSource:
        context = SourceContext(
            trigger_id=TRIGGER,
            function="tick",
            topic=TOPIC,
            options=options,
            config={"schedule": options, **config},
            bus=self.bus,
            store=self.store,
            data_dir=self.data_dir,
        )
        source = ScheduleKind(clock=self.clock, region="eu-west-1").create(context)
        assert isinstance(source, ScheduleSource)
        return source

    async def events(self) -> list[dict[str, Any]]:
        return [item.event.to_dict() for item in await self.bus.read(TOPIC, limit=1000)]

    async def wait_for_events(self, count: int) -> list[dict[str, Any]]:
        async with asyncio.timeout(10):
            while True:
                events = await self.events()
                if len(events) >= count:
                    return events
                await asyncio.sleep(0.01)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with (
        SqliteBus(tmp_path / "bus.db") as bus,
        SqlStore(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}") as store,
    ):
        await bus.create_topic(TOPIC)
        yield Rig(bus, store, MemoryClock(START), tmp_path)


def times(events: list[dict[str, Any]]) -> list[str]:
    return [event["time"] for event in events]


async def test_each_slot_is_one_event_with_its_scheduled_time(rig: Rig) -> None:
    source = rig.source({"expression": "rate(1 second)"})
    await source.start()
    try:
        for _ in range(3):
            rig.clock.advance(1)
            await asyncio.sleep(0)
        events = await rig.wait_for_events(3)
    finally:
        await source.stop()

    assert times(events) == ["2024-05-01T12:00:01Z", "2024-05-01T12:00:02Z", "2024-05-01T12:00:03Z"]
    first = events[0]
    assert first["id"] == "tick.schedule@2024-05-01T12:00:01Z"
    assert first["type"] == "triggerfish.schedule"
    assert first["source"] == "triggerfish://schedule/tick.schedule"
    assert first["data"]["expression"] == "rate(1 second)"
    assert first["data"]["scheduled_time"] == "2024-05-01T12:00:01Z"


async def test_a_new_schedule_does_not_fire_slots_from_before_it_started(rig: Rig) -> None:
    source = rig.source({"expression": "rate(1 second)", "missed": "catch_up"})
    await source.start()
    await source.stop()
    assert await rig.events() == []


async def test_a_restart_fires_no_slot_twice_and_skips_missed_slots_by_default(rig: Rig) -> None:
    first = rig.source({"expression": "rate(1 second)"})
    await first.start()
    rig.clock.advance(2)
    await rig.wait_for_events(2)
    await first.stop()

    rig.clock.advance(10)  # down for ten seconds
    second = rig.source({"expression": "rate(1 second)"})
    await second.start()
    try:
        rig.clock.advance(1)
        events = await rig.wait_for_events(3)
    finally:
        await second.stop()

    assert times(events) == ["2024-05-01T12:00:01Z", "2024-05-01T12:00:02Z", "2024-05-01T12:00:13Z"]


async def test_catch_up_fires_the_latest_missed_slots_up_to_the_limit(rig: Rig) -> None:
    options = {"expression": "rate(1 minute)", "missed": "catch_up", "catch_up_limit": 3}
    first = rig.source(options)
    await first.start()
    await first.stop()

    rig.clock.advance(10 * 60)  # ten slots pass while down
    second = rig.source(options)
    await second.start()
    await second.stop()

    assert times(await rig.events()) == [
        "2024-05-01T12:08:00Z",
        "2024-05-01T12:09:00Z",
        "2024-05-01T12:10:00Z",
    ]


async def test_a_slot_published_but_not_recorded_is_not_fired_again(rig: Rig) -> None:
    """A crash between publishing a slot and recording it: the bus drops the repeat."""
    options = {"expression": "rate(1 minute)", "missed": "catch_up"}
    first = rig.source(options)
    await first.start()
    await first.stop()
    rig.clock.advance(60)
    await rig.bus.publish(TOPIC, [first.event(datetime(2024, 5, 1, 12, 1, tzinfo=UTC))])

    second = rig.source(options)
    await second.start()
    await second.stop()

    assert times(await rig.events()) == ["2024-05-01T12:01:00Z"]


async def test_cron_in_a_time_zone(rig: Rig) -> None:
    # 14:00 in Paris (summer) is 12:00 UTC: the next slot is tomorrow's.
    source = rig.source({"expression": "cron(0 14 * * ? *)", "timezone": "Europe/Paris"})
    await source.start()
    try:
        rig.clock.advance(86400)
        (event,) = await rig.wait_for_events(1)
    finally:
        await source.stop()
    assert event["time"] == "2024-05-02T12:00:00Z"
    assert event["data"]["local_time"] == "2024-05-02T14:00:00+02:00"


async def test_aws_format_gives_eventbridge_scheduled_event(rig: Rig) -> None:
    source = rig.source({"expression": "rate(1 minute)"}, event_format="aws")
    event = source.event(datetime(2024, 5, 1, 12, 1, tzinfo=UTC))
    data = orjson.loads(event.data or b"")
    assert data == {
        "version": "0",
        "id": data["id"],
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": "2024-05-01T12:01:00Z",
        "region": "eu-west-1",
        "resources": ["arn:aws:events:eu-west-1:000000000000:rule/tick.schedule"],
        "detail": {},
    }
    again = source.event(datetime(2024, 5, 1, 12, 1, tzinfo=UTC))
    assert orjson.loads(again.data or b"")["id"] == data["id"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"expression": "rate(5 fortnights)"}, r"triggers\[0\]\.schedule: .*unknown rate unit"),
        ({"expression": "rate(1 minute)", "timezone": "Nowhere/City"}, "unknown time zone"),
        ({"expression": "at(2020-01-01T00:00:00)"}, "never fires again"),
    ],
)
def test_validate_names_the_trigger_and_the_problem(options: dict[str, Any], message: str) -> None:
    kind = ScheduleKind(clock=MemoryClock(START))
    with pytest.raises(ConfigError, match=message):
        kind.validate(options, where="triggerfish.yaml: functions.tick.triggers[0].schedule")
