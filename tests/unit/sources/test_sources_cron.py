"""Next-fire arithmetic: EventBridge rate() and cron(), five-field cron, time zones and
daylight saving, without a clock."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from triggerfish.errors import ConfigError
from triggerfish.sources.cron import next_fire, parse_schedule, slots_between


def firings(expression: str, after: str, count: int, timezone: str = "UTC") -> list[str]:
    """The next ``count`` firings after ``after``, as local ISO times of ``timezone``."""
    tz = ZoneInfo(timezone)
    moment: datetime | None = datetime.fromisoformat(after)
    out = []
    for _ in range(count):
        assert moment is not None
        moment = next_fire(expression, moment, timezone)
        if moment is None:
            break
        out.append(moment.astimezone(tz).isoformat())
    return out


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        # rate(): multiples of the period since the epoch, strictly after.
        ("rate(5 minutes)", "2024-01-01T00:01:00+00:00", ["00:05", "00:10", "00:15"]),
        ("rate(5 minutes)", "2024-01-01T00:05:00+00:00", ["00:10", "00:15", "00:20"]),
        ("rate(1 minute)", "2024-01-01T00:00:30+00:00", ["00:01", "00:02", "00:03"]),
        ("rate(1 hour)", "2024-01-01T00:59:59+00:00", ["01:00", "02:00", "03:00"]),
        ("rate(2 hours)", "2024-01-01T01:00:00+00:00", ["02:00", "04:00", "06:00"]),
        ("RATE(30 seconds)", "2024-01-01T00:00:10+00:00", ["00:00:30", "00:01", "00:01:30"]),
        # five-field cron
        ("*/15 * * * *", "2024-01-01T00:00:00+00:00", ["00:15", "00:30", "00:45"]),
        ("0 9-10 * * *", "2024-01-01T09:30:00+00:00", ["10:00", "09:00+1", "10:00+1"]),
        ("5,35 */6 * * *", "2024-01-01T00:10:00+00:00", ["00:35", "06:05", "06:35"]),
        ("@hourly", "2024-01-01T00:00:00+00:00", ["01:00", "02:00", "03:00"]),
        # EventBridge cron with '?'
        ("cron(0 12 * * ? *)", "2024-01-01T12:00:00+00:00", ["12:00+1", "12:00+2", "12:00+3"]),
        ("cron(15 10 ? * MON-FRI *)", "2024-01-05T11:00:00+00:00", ["10:15+3", "10:15+4"]),
    ],
)
def test_times_of_day(expression: str, after: str, expected: list[str]) -> None:
    start = datetime.fromisoformat(after)
    got = []
    for text in firings(expression, after, len(expected)):
        moment = datetime.fromisoformat(text)
        days = (moment.date() - start.date()).days
        clock = moment.strftime("%H:%M:%S" if moment.second else "%H:%M")
        got.append(clock + (f"+{days}" if days else ""))
    assert got == expected


@pytest.mark.parametrize(
    ("expression", "after", "expected_days"),
    [
        # L: the last day of the month (leap year), L-2: two days before it
        ("cron(0 9 L * ? *)", "2024-02-01T00:00:00+00:00", ["2024-02-29", "2024-03-31"]),
        ("cron(0 9 L-2 * ? *)", "2024-02-01T00:00:00+00:00", ["2024-02-27", "2024-03-29"]),
        # W: the weekday nearest the 15th (Saturday 15 June -> Friday 14, not into July)
        ("cron(0 9 15W * ? *)", "2024-06-01T00:00:00+00:00", ["2024-06-14", "2024-07-15"]),
        # 1W on a Saturday goes forward to Monday the 3rd, staying in the month
        ("cron(0 9 1W * ? *)", "2024-06-01T00:00:00+00:00", ["2024-06-03", "2024-07-01"]),
        # LW: the last weekday (30 June 2024 is a Sunday)
        ("cron(0 9 LW * ? *)", "2024-06-01T00:00:00+00:00", ["2024-06-28", "2024-07-31"]),
        # #: the second Tuesday (3 is TUE, SUN is 1)
        ("cron(0 10 ? * 3#2 *)", "2024-01-01T00:00:00+00:00", ["2024-01-09", "2024-02-13"]),
        ("cron(0 10 ? * TUE#2 *)", "2024-01-01T00:00:00+00:00", ["2024-01-09", "2024-02-13"]),
        # 6L: the last Friday of the month
        ("cron(0 10 ? * 6L *)", "2024-01-01T00:00:00+00:00", ["2024-01-26", "2024-02-23"]),
        # a year field, and nothing after it
        ("cron(0 0 1 1 ? 2025-2026)", "2024-06-01T00:00:00+00:00", ["2025-01-01", "2026-01-01"]),
        # five-field: both day fields restricted means either (the 1st, and Mondays)
        ("0 0 1 * 1", "2024-01-01T00:00:00+00:00", ["2024-01-08", "2024-01-15"]),
        ("0 0 13 * 5", "2024-09-01T00:00:00+00:00", ["2024-09-06", "2024-09-13"]),
        # five-field: a day field starting with '*' narrows instead
        ("0 0 */10 * 1", "2024-01-01T00:00:00+00:00", ["2024-03-11", "2024-04-01"]),
        # Sunday is 0 and 7 in five-field cron
        ("0 0 * * 7", "2024-01-01T00:00:00+00:00", ["2024-01-07", "2024-01-14"]),
        ("0 0 * * SUN", "2024-01-01T00:00:00+00:00", ["2024-01-07", "2024-01-14"]),
        # 29 February only
        ("0 0 29 2 *", "2024-03-01T00:00:00+00:00", ["2028-02-29", "2032-02-29"]),
        ("0 0 L 2 *", "2023-01-01T00:00:00+00:00", ["2023-02-28", "2024-02-29"]),
    ],
)
def test_days(expression: str, after: str, expected_days: list[str]) -> None:
    days = [text[:10] for text in firings(expression, after, len(expected_days))]
    assert days == expected_days


@pytest.mark.parametrize(
    ("expression", "after", "timezone", "expected"),
    [
        # noon in Paris is 11:00 UTC in winter and 10:00 UTC in summer
        ("cron(0 12 * * ? *)", "2024-03-30T00:00:00+00:00", "Europe/Paris",
         ["2024-03-30T12:00:00+01:00", "2024-03-31T12:00:00+02:00"]),
        # spring forward in New York: 02:30 does not exist on 10 March; it fires when the
        # clocks jump (03:00 EDT), once
        ("30 2 * * *", "2024-03-09T00:00:00-05:00", "America/New_York",
         ["2024-03-09T02:30:00-05:00", "2024-03-10T03:00:00-04:00",
          "2024-03-11T02:30:00-04:00"]),
        # every 30 minutes across the gap: 01:30, then 03:00 (not twice), 03:30
        ("*/30 * * * *", "2024-03-10T01:00:00-05:00", "America/New_York",
         ["2024-03-10T01:30:00-05:00", "2024-03-10T03:00:00-04:00",
          "2024-03-10T03:30:00-04:00"]),
        # fall back: 01:30 happens twice; a fixed time fires at the first only
        ("30 1 * * *", "2024-11-02T12:00:00-04:00", "America/New_York",
         ["2024-11-03T01:30:00-04:00", "2024-11-04T01:30:00-05:00"]),
        # ... while an every-hour schedule keeps its pace through both hours
        ("*/30 * * * *", "2024-11-03T00:50:00-04:00", "America/New_York",
         ["2024-11-03T01:00:00-04:00", "2024-11-03T01:30:00-04:00",
          "2024-11-03T01:00:00-05:00", "2024-11-03T01:30:00-05:00",
          "2024-11-03T02:00:00-05:00"]),
        # starting inside the repeated hour (second pass) does not go back
        ("*/30 * * * *", "2024-11-03T01:10:00-05:00", "America/New_York",
         ["2024-11-03T01:30:00-05:00", "2024-11-03T02:00:00-05:00"]),
        # a half-hour shift (Lord Howe Island), fixed time inside the gap
        ("15 2 * * *", "2024-10-05T12:00:00+10:30", "Australia/Lord_Howe",
         ["2024-10-06T02:30:00+11:00", "2024-10-07T02:15:00+11:00"]),
        # rate() ignores the time zone and the clock changes
        ("rate(1 hour)", "2024-03-10T01:30:00-05:00", "America/New_York",
         ["2024-03-10T03:00:00-04:00", "2024-03-10T04:00:00-04:00"]),
    ],
)  # fmt: skip
def test_time_zones_and_daylight_saving(
    expression: str, after: str, timezone: str, expected: list[str]
) -> None:
    assert firings(expression, after, len(expected), timezone) == expected


def test_an_every_20_minutes_schedule_keeps_real_time_pace_all_year() -> None:
    tz = "Europe/London"
    slots = slots_between(
        "*/20 * * * *",
        datetime(2024, 1, 1, tzinfo=UTC),
        datetime(2025, 1, 1, tzinfo=UTC),
        tz,
    )
    # A one-hour shift keeps the minutes: every 20 minutes of real time all year, the
    # skipped spring hour firing once and the repeated autumn hour twice.
    assert len(slots) == 366 * 24 * 3
    assert {(b - a).total_seconds() for a, b in itertools.pairwise(slots)} == {1200}


@pytest.mark.parametrize(
    ("expression", "after"),
    [
        ("cron(0 0 1 1 ? 2020)", "2024-01-01T00:00:00+00:00"),
        ("cron(0 0 30 2 ? *)", "2024-01-01T00:00:00+00:00"),
        ("at(2024-01-01T09:00:00)", "2024-01-01T09:00:00+00:00"),
    ],
)
def test_schedules_that_never_fire_again(expression: str, after: str) -> None:
    assert next_fire(expression, datetime.fromisoformat(after)) is None


def test_at_fires_once_in_its_time_zone() -> None:
    after = datetime(2024, 1, 1, tzinfo=UTC)
    fired = next_fire("at(2024-06-01T09:00:00)", after, "Asia/Tokyo")
    assert fired == datetime(2024, 6, 1, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("after", "until", "limit", "expected"),
    [
        ("00:00:00", "00:00:03", None, ["00:00:01", "00:00:02", "00:00:03"]),
        ("00:00:00", "00:00:05", 2, ["00:00:04", "00:00:05"]),
        ("00:00:00.500", "00:00:01", None, ["00:00:01"]),
        ("00:00:01", "00:00:01.999", None, []),
    ],
)  # fmt: skip
def test_slots_between_rate(after: str, until: str, limit: int | None, expected: list[str]) -> None:
    def at(text: str) -> datetime:
        return datetime.fromisoformat(f"2024-01-01T{text}+00:00")

    slots = slots_between("rate(1 second)", at(after), at(until), limit=limit)
    assert [s.strftime("%H:%M:%S") for s in slots] == expected


def test_slots_between_cron_keeps_the_latest_when_limited() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    end = datetime(2024, 1, 1, 1, 0, tzinfo=UTC)
    every = slots_between("*/10 * * * *", start, end)
    assert [s.minute for s in every] == [10, 20, 30, 40, 50, 0]
    assert slots_between("*/10 * * * *", start, end, limit=2) == every[-2:]


def test_rate_slots_agree_wherever_they_start() -> None:
    """Slots are anchored to the epoch: two nodes (or restarts) agree on them."""
    a = next_fire("rate(7 minutes)", datetime(2024, 1, 1, 0, 1, 1, tzinfo=UTC))
    b = next_fire("rate(7 minutes)", datetime(2024, 1, 1, 0, 5, 0, tzinfo=UTC))
    assert a == b
    assert a is not None
    assert int(a.timestamp()) % 420 == 0


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("rate(5 fortnights)", "unknown rate unit"),
        ("rate(0 minutes)", "at least 1"),
        ("cron(0 12 * * *)", "six fields"),
        ("cron(0 12 * * MON *)", "exactly one of day-of-month and day-of-week must be '?'"),
        ("cron(0 12 ? * ? *)", "exactly one of day-of-month and day-of-week must be '?'"),
        ("cron(60 12 * * ? *)", "outside 0-59"),
        ("cron(0 12 ? * 8 *)", "outside 1-7"),
        ("cron(0 12 ? * 3#6 *)", "'#' takes 1 to 5"),
        ("cron(0 12 ? * MON-SUN *)", "a range must go upwards"),
        ("cron(0 12 * FOO ? *)", "'FOO' is not a number or a name"),
        ("cron(*/0 12 * * ? *)", "positive number"),
        ("0 12 * *", "five-field cron line"),
        ("every day", "expected rate(N unit)"),
        ("at(2024-02-30T00:00:00)", "not a valid date"),
    ],
)
def test_bad_expressions_say_what_is_wrong(expression: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_schedule(expression)


def test_unknown_time_zone() -> None:
    with pytest.raises(ConfigError, match="unknown time zone 'Mars/Olympus'"):
        parse_schedule("rate(1 minute)", "Mars/Olympus")


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        next_fire("rate(1 minute)", datetime(2024, 1, 1))
