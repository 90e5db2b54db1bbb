"""Schedule arithmetic: when does a schedule fire next. Pure functions, no clock.

Three dialects are understood:

- ``rate(N unit)`` (EventBridge), unit one of second(s), minute(s), hour(s), day(s).
  Rate slots are whole multiples of the period since the Unix epoch, so every node and
  every restart agrees on them (``rate(1 day)`` fires at 00:00 UTC).
- ``cron(min hour day-of-month month day-of-week year)`` (EventBridge): day-of-week 1-7
  is SUN-SAT, one of the two day fields must be ``?``; ``L`` (last day, ``L-3``, ``5L``
  the last Thursday), ``W`` (nearest weekday, ``LW``), ``#`` (``3#2`` the second Tuesday).
- A five-field cron line ``min hour day-of-month month day-of-week`` (day-of-week 0-7,
  0 and 7 are Sunday); when both day fields are restricted a day matching either fires,
  as classic cron does. ``@hourly``, ``@daily``, ``@weekly``, ``@monthly``, ``@yearly``.
- ``at(2030-01-01T09:00:00)``: once, at that local time (EventBridge Scheduler).

Cron fields are read on the wall clock of the schedule's time zone. Across daylight
saving changes: a local time that does not exist (the hour skipped in spring) fires at
the instant the clocks jump; a local time that happens twice (autumn) fires once, at its
first occurrence, unless the hour field is ``*``, where both hours fire (an "every 15
minutes" schedule keeps its pace). Two local times that land on the same instant fire
once.

``next_fire`` and ``slots_between`` are the whole interface; both raise ``ConfigError``
for an expression that cannot be read.
"""

from __future__ import annotations

import calendar
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from triggerfish.errors import ConfigError

_RATE_RE = re.compile(r"^rate\(\s*(\d+)\s+([a-z]+)\s*\)$", re.IGNORECASE)
_CRON_RE = re.compile(r"^cron\((.*)\)$", re.IGNORECASE | re.DOTALL)
_AT_RE = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$", re.IGNORECASE)
_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_MONTHS = {name.upper(): i for i, name in enumerate(calendar.month_abbr) if name}
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_LAST_YEAR = 2199  # EventBridge's own bound; no search goes past it
_DST_SHIFT = timedelta(hours=3)  # more than any daylight saving change ever made


def zone(name: str) -> ZoneInfo:
    """The time zone ``name``; ConfigError when it is unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"unknown time zone {name!r}; expected an IANA name such as 'Europe/Paris' or 'UTC'"
        ) from None


@dataclass(frozen=True, slots=True)
class _Days:
    """The day rules of one cron line, resolved per month."""

    dom: frozenset[int] | None  # None: unrestricted
    dom_last: frozenset[int]  # L-n: n days before the last day (L is 0)
    dom_weekday: frozenset[int]  # nW: the weekday nearest to day n
    dom_last_weekday: bool  # LW
    dow: frozenset[int] | None  # python weekdays (Monday 0); None: unrestricted
    dow_last: frozenset[int]  # the last such weekday of the month
    dow_nth: frozenset[tuple[int, int]]  # (weekday, n): the n-th such weekday
    either: bool  # classic cron: both restricted means a day matching either fires

    def of(self, year: int, month: int) -> frozenset[int]:
        return _days_of(self, year, month)


@lru_cache(maxsize=4096)
def _days_of(rules: _Days, year: int, month: int) -> frozenset[int]:
    first_weekday, length = calendar.monthrange(year, month)
    all_days = range(1, length + 1)
    weekday = {day: (first_weekday + day - 1) % 7 for day in all_days}

    dom_given = (
        rules.dom is not None or rules.dom_last or rules.dom_weekday or rules.dom_last_weekday
    )
    by_dom: set[int] = set()
    if rules.dom is not None:
        by_dom |= {d for d in rules.dom if d <= length}
    by_dom |= {length - n for n in rules.dom_last if length - n >= 1}
    for n in rules.dom_weekday:
        if n <= length:
            by_dom.add(_nearest_weekday(n, length, weekday))
    if rules.dom_last_weekday:
        by_dom.add(_nearest_weekday(length, length, weekday))

    dow_given = rules.dow is not None or rules.dow_last or rules.dow_nth
    by_dow: set[int] = set()
    if rules.dow is not None:
        by_dow |= {d for d in all_days if weekday[d] in rules.dow}
    for wd in rules.dow_last:
        by_dow.add(max(d for d in all_days if weekday[d] == wd))
    for wd, n in rules.dow_nth:
        matches = [d for d in all_days if weekday[d] == wd]
        if n <= len(matches):
            by_dow.add(matches[n - 1])

    if dom_given and dow_given:
        return frozenset(by_dom | by_dow if rules.either else by_dom & by_dow)
    if dom_given:
        return frozenset(by_dom)
    if dow_given:
        return frozenset(by_dow)
    return frozenset(all_days)


def _nearest_weekday(day: int, length: int, weekday: dict[int, int]) -> int:
    """Quartz's ``W``: the Monday-to-Friday day nearest to ``day``, in the same month."""
    if weekday[day] == 5:  # Saturday: Friday before, or Monday after on the 1st
        return day - 1 if day > 1 else day + 2
    if weekday[day] == 6:  # Sunday: Monday after, or Friday before on the last day
        return day + 1 if day < length else day - 2
    return day


@dataclass(frozen=True, slots=True)
class _Cron:
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    months: frozenset[int]
    years: tuple[int, ...] | None  # None: every year
    days: _Days
    every_hour: bool  # the hour field is "*": repeated autumn hours fire twice

    def matches(self, moment: datetime) -> bool:
        return (
            (self.years is None or moment.year in self.years)
            and moment.month in self.months
            and moment.day in self.days.of(moment.year, moment.month)
            and moment.hour in self.hours
            and moment.minute in self.minutes
        )

    def local_times(self, start: datetime) -> Iterator[datetime]:
        """Matching naive wall-clock minutes at or after ``start``, in order."""
        moment = start.replace(second=0, microsecond=0)
        if moment < start:
            moment += timedelta(minutes=1)
        while moment.year <= _LAST_YEAR:
            if self.years is not None and moment.year not in self.years:
                later = [y for y in self.years if y > moment.year]
                if not later:
                    return
                moment = datetime(later[0], 1, 1)
                continue
            if moment.month not in self.months:
                moment = _next_month(moment)
                continue
            if moment.day not in self.days.of(moment.year, moment.month):
                moment = datetime(moment.year, moment.month, moment.day) + timedelta(days=1)
                continue
            if moment.hour not in self.hours:
                moment = moment.replace(minute=0) + timedelta(hours=1)
                continue
            if moment.minute not in self.minutes:
                later_minutes = [m for m in self.minutes if m > moment.minute]
                if later_minutes:
                    moment = moment.replace(minute=later_minutes[0])
                else:
                    moment = moment.replace(minute=0) + timedelta(hours=1)
                continue
            yield moment
            moment += timedelta(minutes=1)


def _next_month(moment: datetime) -> datetime:
    if moment.month == 12:
        return datetime(moment.year + 1, 1, 1)
    return datetime(moment.year, moment.month + 1, 1)


@dataclass(frozen=True, slots=True)
class Schedule:
    """A parsed schedule expression, in one time zone."""

    expression: str
    tz: ZoneInfo
    period: int = 0  # seconds, for rate()
    once: datetime | None = None  # naive local time, for at()
    cron: _Cron | None = None

    def instants(self, local: datetime) -> list[datetime]:
        """The instants (aware, UTC) at which the wall-clock time ``local`` fires."""
        first = local.replace(tzinfo=self.tz, fold=0)
        second = local.replace(tzinfo=self.tz, fold=1)
        if first.utcoffset() == second.utcoffset():
            return [first.astimezone(UTC)]
        if _exists(first):
            # A repeated autumn time: once, or twice when the schedule fires every hour.
            both = self.cron is not None and self.cron.every_hour
            return (
                [first.astimezone(UTC), second.astimezone(UTC)] if both else [first.astimezone(UTC)]
            )
        return [_transition(second.astimezone(UTC), first.astimezone(UTC), self.tz)]

    def next_after(self, after: datetime) -> datetime | None:
        after = after.astimezone(UTC)
        if self.period:
            seconds = after.timestamp()
            slot = (int(seconds // self.period) + 1) * self.period
            return datetime.fromtimestamp(slot, UTC)
        if self.once is not None:
            instant = self.instants(self.once)[0]
            return instant if instant > after else None
        assert self.cron is not None
        if self._steady(after):
            # No offset change near ``after``: wall-clock order is instant order there.
            start = after.astimezone(self.tz).replace(tzinfo=None)
            for local in self.cron.local_times(start):
                for instant in self.instants(local):
                    if instant > after:
                        return instant if self._steady(instant) else self._careful(after)
            return None
        return self._careful(after)

    def _steady(self, instant: datetime) -> bool:
        """True when the offset of the zone is the same a few hours on either side."""
        before = (instant - _DST_SHIFT).astimezone(self.tz).utcoffset()
        return before == (instant + _DST_SHIFT).astimezone(self.tz).utcoffset()

    def _careful(self, after: datetime) -> datetime | None:
        """Near an offset change, wall-clock order differs from instant order: look at
        every local time within a few hours of the first candidate, keep the earliest."""
        assert self.cron is not None
        start = after.astimezone(self.tz).replace(tzinfo=None) - _DST_SHIFT
        best: datetime | None = None
        horizon: datetime | None = None
        for local in self.cron.local_times(start):
            if horizon is not None and local > horizon:
                break
            for instant in self.instants(local):
                if instant > after and (best is None or instant < best):
                    best = instant
                    horizon = local + _DST_SHIFT
        return best


def _exists(aware: datetime) -> bool:
    """False for a wall-clock time inside a spring-forward gap."""
    back = aware.astimezone(UTC).astimezone(aware.tzinfo)
    return back.replace(tzinfo=None) == aware.replace(tzinfo=None)


def _transition(low: datetime, high: datetime, tz: ZoneInfo) -> datetime:
    """The instant in (low, high] where the offset of ``tz`` changes (to the second)."""
    before = low.astimezone(tz).utcoffset()
    while (high - low) > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(tz).utcoffset() == before:
            low = middle
        else:
            high = middle
    return high.replace(microsecond=0)


def parse_schedule(expression: str, timezone: str = "UTC") -> Schedule:
    """Read ``expression``; ConfigError saying what is wrong when it cannot be read."""
    tz = zone(timezone)
    text = expression.strip()
    if match := _RATE_RE.match(text):
        count, unit = int(match.group(1)), match.group(2).lower()
        seconds = _UNITS.get(unit.removesuffix("s"))
        if seconds is None:
            raise ConfigError(
                f"{expression!r}: unknown rate unit {unit!r}; expected seconds, minutes, "
                "hours or days"
            )
        if count < 1:
            raise ConfigError(f"{expression!r}: a rate must be at least 1 {unit}")
        return Schedule(expression, tz, period=count * seconds)
    if match := _AT_RE.match(text):
        try:
            once = datetime.fromisoformat(match.group(1))
        except ValueError:
            raise ConfigError(f"{expression!r}: not a valid date and time") from None
        return Schedule(expression, tz, once=once)
    if match := _CRON_RE.match(text):
        fields = match.group(1).split()
        if len(fields) != 6:
            raise ConfigError(
                f"{expression!r}: cron() takes six fields (minutes hours day-of-month month "
                f"day-of-week year), got {len(fields)}"
            )
        return Schedule(expression, tz, cron=_parse_cron(fields, expression, eventbridge=True))
    fields = _MACROS.get(text.lower(), text).split()
    if len(fields) == 5:
        return Schedule(expression, tz, cron=_parse_cron(fields, expression, eventbridge=False))
    raise ConfigError(
        f"{expression!r}: expected rate(N unit), cron(six fields), at(date-time) or a "
        "five-field cron line such as '*/5 * * * *'"
    )


def next_fire(
    expression: str | Schedule, after: datetime, timezone: str = "UTC"
) -> datetime | None:
    """The first firing strictly after ``after`` (an aware datetime), in UTC; None when
    the schedule never fires again."""
    schedule = (
        expression if isinstance(expression, Schedule) else parse_schedule(expression, timezone)
    )
    if after.tzinfo is None:
        raise ValueError("next_fire needs an aware datetime (with a time zone)")
    return schedule.next_after(after)


def slots_between(
    expression: str | Schedule,
    after: datetime,
    until: datetime,
    timezone: str = "UTC",
    *,
    limit: int | None = None,
) -> list[datetime]:
    """The firings in ``(after, until]``, oldest first; with ``limit``, only the latest
    ``limit`` of them."""
    schedule = (
        expression if isinstance(expression, Schedule) else parse_schedule(expression, timezone)
    )
    if after.tzinfo is None or until.tzinfo is None:
        raise ValueError("slots_between needs aware datetimes (with a time zone)")
    if schedule.period:
        first = int(after.timestamp() // schedule.period) + 1
        last = int(until.timestamp() // schedule.period)
        if limit is not None:
            first = max(first, last - limit + 1)
        return [datetime.fromtimestamp(n * schedule.period, UTC) for n in range(first, last + 1)]
    slots: deque[datetime] = deque(maxlen=limit)
    current: datetime | None = after
    while current is not None:
        current = schedule.next_after(current)
        if current is None or current > until:
            break
        slots.append(current)
    return list(slots)


# -- cron fields ------------------------------------------------------------------


def _parse_cron(fields: list[str], expression: str, *, eventbridge: bool) -> _Cron:
    minute, hour, dom, month, dow = fields[:5]
    where = f"{expression!r}"
    if eventbridge and (dom == "?") == (dow == "?"):
        raise ConfigError(
            f"{where}: exactly one of day-of-month and day-of-week must be '?' "
            "(for example cron(0 12 * * ? *))"
        )
    years = None
    if eventbridge and fields[5] not in ("*", "?"):
        years = tuple(sorted(_values(fields[5], 1970, _LAST_YEAR, {}, f"{where} year")))
    return _Cron(
        minutes=tuple(sorted(_values(minute, 0, 59, {}, f"{where} minutes"))),
        hours=tuple(sorted(_values(hour, 0, 23, {}, f"{where} hours"))),
        months=frozenset(_values(month, 1, 12, _MONTHS, f"{where} month")),
        years=years,
        days=_parse_days(dom, dow, where, eventbridge=eventbridge),
        every_hour=hour == "*",
    )


def _parse_days(dom: str, dow: str, where: str, *, eventbridge: bool) -> _Days:
    dom_values: set[int] | None = None
    dom_last: set[int] = set()
    dom_weekday: set[int] = set()
    dom_last_weekday = False
    if dom not in ("?", "*"):
        dom_values = set()
        for item in dom.split(","):
            upper = item.upper()
            if upper == "LW":
                dom_last_weekday = True
            elif upper == "L" or re.fullmatch(r"L-\d+", upper):
                offset = int(upper[2:]) if len(upper) > 1 else 0
                if offset > 30:
                    raise ConfigError(f"{where} day-of-month: {item!r} goes before the month")
                dom_last.add(offset)
            elif upper.endswith("W"):
                dom_weekday |= _values(upper[:-1], 1, 31, {}, f"{where} day-of-month", single=True)
            else:
                dom_values |= _values(item, 1, 31, {}, f"{where} day-of-month")
        if not dom_values:
            dom_values = None

    # Day-of-week names map to the dialect's numbers, then to Python's (Monday 0).
    names = (
        {name: i + 1 for i, name in enumerate(_DAYS)}
        if eventbridge
        else {name: i for i, name in enumerate(_DAYS)}
    )
    low, high = (1, 7) if eventbridge else (0, 7)

    def to_python(value: int) -> int:
        return (value + 5) % 7 if eventbridge else (value + 6) % 7

    dow_values: set[int] | None = None
    dow_last: set[int] = set()
    dow_nth: set[tuple[int, int]] = set()
    if dow not in ("?", "*"):
        dow_values = set()
        for item in dow.split(","):
            upper = item.upper()
            if "#" in upper:
                day_text, _, nth_text = upper.partition("#")
                (day,) = _values(day_text, low, high, names, f"{where} day-of-week", single=True)
                if not nth_text.isdigit() or not 1 <= int(nth_text) <= 5:
                    raise ConfigError(f"{where} day-of-week: {item!r}: '#' takes 1 to 5")
                dow_nth.add((to_python(day), int(nth_text)))
            elif upper == "L":
                dow_last.add(5)  # a bare L is the last day of the week: Saturday
            elif upper.endswith("L"):
                (day,) = _values(upper[:-1], low, high, names, f"{where} day-of-week", single=True)
                dow_last.add(to_python(day))
            else:
                dow_values |= {
                    to_python(v) for v in _values(item, low, high, names, f"{where} day-of-week")
                }
        if not dow_values:
            dow_values = None
    return _Days(
        dom=frozenset(dom_values) if dom_values is not None else None,
        dom_last=frozenset(dom_last),
        dom_weekday=frozenset(dom_weekday),
        dom_last_weekday=dom_last_weekday,
        dow=frozenset(dow_values) if dow_values is not None else None,
        dow_last=frozenset(dow_last),
        dow_nth=frozenset(dow_nth),
        # Classic cron: a day field starting with '*' does not widen the other.
        either=not eventbridge
        and not dom.startswith(("*", "?"))
        and not dow.startswith(("*", "?")),
    )


def _values(
    text: str, low: int, high: int, names: dict[str, int], where: str, *, single: bool = False
) -> set[int]:
    """The numbers a field (``*``, ``5``, ``1-5``, ``*/15``, ``10/5``, ``MON-FRI``, lists)
    stands for, between ``low`` and ``high``."""
    out: set[int] = set()
    for item in text.split(","):
        base, slash, step_text = item.partition("/")
        if single and (slash or "-" in base or base in ("*", "?")):
            raise ConfigError(f"{where}: expected a single value, got {item!r}")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) < 1:
                raise ConfigError(
                    f"{where}: {item!r}: the step after '/' must be a positive number"
                )
            step = int(step_text)
        if base in ("*", "?"):
            start, end = low, high
        elif "-" in base:
            first, _, last = base.partition("-")
            start, end = _value(first, names, where), _value(last, names, where)
        else:
            start = _value(base, names, where)
            end = high if slash else start
        if not (low <= start <= high and low <= end <= high):
            raise ConfigError(f"{where}: {item!r} is outside {low}-{high}")
        if start > end:
            raise ConfigError(f"{where}: {item!r}: a range must go upwards")
        out.update(range(start, end + 1, step))
    return out


def _value(text: str, names: dict[str, int], where: str) -> int:
    upper = text.upper()
    if upper in names:
        return names[upper]
    if text.isdigit():
        return int(text)
    raise ConfigError(f"{where}: {text!r} is not a number" + (" or a name" if names else ""))
