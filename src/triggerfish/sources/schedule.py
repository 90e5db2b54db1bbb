"""Schedules: each firing of a ``schedule:`` trigger is one event on the trigger's topic.

An event's ``time`` is its scheduled time (the slot), not the moment it was published,
and its id is ``<trigger id>@<slot>``: the bus drops a second publish of the same slot,
and the last slot fired is kept in the store (documents of kind ``schedule``), so a
restart, a crash between publishing and recording, or two nodes sharing a bus never
fire one slot twice.

After downtime the slots missed in between follow the trigger's ``missed`` policy:
``skip`` (the default) fires none of them, ``catch_up`` fires the latest
``catch_up_limit`` of them at once, oldest first, each with its own scheduled time.
A new schedule starts with the first slot after it is deployed.

Handlers get the CloudEvent (type ``triggerfish.schedule``), or with ``event_format:
aws`` the ``Scheduled Event`` that EventBridge hands Lambda.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from triggerfish.errors import ConfigError, TriggerfishError
from triggerfish.events.create import new_event
from triggerfish.events.model import Event
from triggerfish.functions.triggers import ScheduleOptions
from triggerfish.runtime.base import ACCOUNT, DEFAULT_REGION
from triggerfish.sources.base import Source, SourceContext
from triggerfish.sources.cron import Schedule, parse_schedule, slots_between

log = logging.getLogger("triggerfish.sources.schedule")

EVENT_TYPE = "triggerfish.schedule"
STATE_KIND = "schedule"
_RETRY_DELAY = 1.0  # seconds before publishing a slot again after the bus failed


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, aware."""

    async def sleep_until(self, when: datetime) -> None:
        """Return at ``when`` (or soon after); may return early, callers check again."""


class SystemClock:
    """The wall clock. Sleeps in short steps, so a clock that jumps is noticed."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, when: datetime) -> None:
        remaining = (when - self.now()).total_seconds()
        if remaining > 0:
            await asyncio.sleep(min(remaining, 30.0))


def iso(instant: datetime) -> str:
    """RFC 3339 in UTC, with milliseconds only when there are any."""
    instant = instant.astimezone(UTC)
    spec = "milliseconds" if instant.microsecond else "seconds"
    return instant.isoformat(timespec=spec).replace("+00:00", "Z")


class ScheduleKind:
    """The ``schedule`` trigger source; on a cluster, the leading node runs them all."""

    name = "schedule"

    def one_per_cluster(self, options: Mapping[str, Any]) -> bool:
        return True

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        region: str = DEFAULT_REGION,
        account: str = ACCOUNT,
    ) -> None:
        self._clock = clock or SystemClock()
        self.region = region
        self.account = account

    def validate(self, options: Mapping[str, Any], *, where: str) -> None:
        try:
            config = ScheduleOptions.model_validate(dict(options))
            schedule = parse_schedule(config.expression, config.timezone)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        if schedule.next_after(self._clock.now()) is None:
            raise ConfigError(f"{where}.expression: {config.expression!r} never fires again")

    def create(self, context: SourceContext) -> Source:
        return ScheduleSource(context, self, clock=self._clock)


class ScheduleSource:
    def __init__(self, context: SourceContext, kind: ScheduleKind, *, clock: Clock) -> None:
        self._context = context
        self._kind = kind
        self._clock = clock
        self.options = ScheduleOptions.model_validate(dict(context.options))
        self.schedule: Schedule = parse_schedule(self.options.expression, self.options.timezone)
        self._aws = context.config.get("event_format") == "aws"
        self._task: asyncio.Task[None] | None = None
        self.last_slot: datetime | None = None

    @property
    def source(self) -> str:
        return f"triggerfish://schedule/{self._context.trigger_id}"

    async def start(self) -> None:
        state = await self._context.store.documents.find(STATE_KIND, self._context.trigger_id)
        now = self._clock.now()
        last = _parse_time(state.get("last_slot")) if state else None
        if last is None:
            self.last_slot = now  # a new schedule: start with the next slot
            await self._record(now)
        else:
            self.last_slot = last
            await self._missed(last, now)
        self._task = asyncio.create_task(self._run(), name=f"schedule {self._context.trigger_id}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _missed(self, last: datetime, now: datetime) -> None:
        """Handle the slots that passed while this schedule was not running."""
        if self.options.missed == "skip":
            following = self.schedule.next_after(last)
            if following is not None and following <= now:
                log.info("schedule %s: skipping slots missed since %s (missed: skip)",
                         self._context.trigger_id, iso(last))  # fmt: skip
                self.last_slot = now
                await self._record(now)
            return
        limit = self.options.catch_up_limit
        slots = slots_between(self.schedule, last, now, limit=limit)
        if slots:
            log.info("schedule %s: catching up %d missed slot(s)", self._context.trigger_id,
                     len(slots))  # fmt: skip
        for slot in slots:
            await self.fire(slot)

    async def _run(self) -> None:
        while True:
            after = self.last_slot or self._clock.now()
            slot = self.schedule.next_after(after)
            if slot is None:
                log.info("schedule %s fires no more", self._context.trigger_id)
                return
            while self._clock.now() < slot:
                await self._clock.sleep_until(slot)
            try:
                await self.fire(slot)
            except TriggerfishError:
                log.exception("schedule %s: slot %s not published; retrying",
                              self._context.trigger_id, iso(slot))  # fmt: skip
                await asyncio.sleep(_RETRY_DELAY)

    async def fire(self, slot: datetime) -> None:
        """Publish the event of ``slot`` (a duplicate publish stores nothing), then
        remember it as the last slot fired."""
        await self._context.bus.publish(self._context.topic, [self.event(slot)])
        self.last_slot = slot
        await self._record(slot)

    async def _record(self, slot: datetime) -> None:
        await self._context.store.documents.put(
            STATE_KIND,
            self._context.trigger_id,
            {"last_slot": iso(slot), "expression": self.options.expression, "at": time.time()},
        )

    def event(self, slot: datetime) -> Event:
        trigger = self._context.trigger_id
        event_id = f"{trigger}@{iso(slot)}"
        data: dict[str, Any]
        if self._aws:
            region, account = self._kind.region, self._kind.account
            data = {
                "version": "0",
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.source}/{event_id}")),
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "account": account,
                "time": iso(slot.replace(microsecond=0)),
                "region": region,
                "resources": [f"arn:aws:events:{region}:{account}:rule/{trigger}"],
                "detail": {},
            }
        else:
            data = {
                "trigger": trigger,
                "function": self._context.function,
                "expression": self.options.expression,
                "timezone": self.options.timezone,
                "scheduled_time": iso(slot),
                "local_time": slot.astimezone(self.schedule.tz).isoformat(),
            }
        return new_event(
            EVENT_TYPE, self.source, data, id=event_id, time=iso(slot), subject=trigger
        )


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
