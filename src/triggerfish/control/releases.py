"""Automatic rollback of weighted aliases: ``ReleaseWatcher`` and the rule it applies.

An alias that sends a share of its invocations to a second version may carry a
``RollbackRule``: when, over the rule's window, that version failed more than
``max_error_rate`` of at least ``min_invocations`` invocations, the watcher sends every
invocation to the alias's main version again (``Aliases.roll_back``: a change in
force on every node), keeps what it saw with the alias (``alias ls`` shows it), and
publishes a ``triggerfish.alias.rolled_back`` CloudEvent on ``_triggerfish.releases``.

The error rate comes from the invocation records, counted per version in one query per
watched alias and pass, every few seconds: never a query per invocation. Only
invocations since the alias was last set count, so a version rolled back once and set
again starts afresh. Only one node of a cluster watches (``leading``: the holder of the
leader lease); the rollback itself only applies while the alias still routes to the
version that failed, so a user's move made meanwhile is never undone.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from triggerfish.bus.base import Bus
from triggerfish.control.aliases import Aliases
from triggerfish.errors import NotFoundError, ValidationError
from triggerfish.events.create import new_event
from triggerfish.store.records import AliasRecord
from triggerfish.store.sql import SqlStore
from triggerfish.store.usage import usage_by_version
from triggerfish.tasks import cancel_task

log = logging.getLogger("triggerfish.releases")

RELEASES_TOPIC = "_triggerfish.releases"
ROLLED_BACK = "triggerfish.alias.rolled_back"
SOURCE = "/triggerfish/releases"
CHECK_INTERVAL = 2.0  # seconds between two passes of the watcher
DEFAULT_MIN_INVOCATIONS = 20

_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_RULE = re.compile(r"^\s*error_rate\s*>\s*(\S+)\s+over\s+(.+?)\s*$")
RULE_FORM = '"error_rate>RATE over WINDOW", e.g. "error_rate>0.05 over 5m"'


def parse_window(value: str | float) -> float:
    """Seconds of a duration: a number of seconds, or ``30s``, ``5m``, ``1h``, ``1d``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        raise ValidationError(
            f"rollback: window {value!r} is not a duration: give seconds, or a number with "
            's, m, h or d ("30s", "5m")',
            field="rollback",
        )
    if not 0 < seconds <= 7 * 86400:
        raise ValidationError(
            f"rollback: the window must be more than 0 and at most 7 days; got {value!r}",
            field="rollback",
        )
    return seconds


@dataclass(frozen=True, slots=True)
class RollbackRule:
    max_error_rate: float  # a share of the invocations, in [0, 1)
    window: float  # seconds
    min_invocations: int = DEFAULT_MIN_INVOCATIONS

    def __post_init__(self) -> None:
        rate = self.max_error_rate
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate < 1:
            raise ValidationError(
                "rollback: the maximum error rate is a share of the invocations, from 0 up "
                f"to, not including, 1 (0.05 for 5%); got {rate!r}",
                field="rollback",
            )
        if isinstance(self.min_invocations, bool) or not (
            isinstance(self.min_invocations, int) and self.min_invocations >= 1
        ):
            raise ValidationError(
                "rollback: the minimum number of invocations must be a whole number of at "
                f"least 1; got {self.min_invocations!r}",
                field="rollback",
            )

    @classmethod
    def parse(cls, text: str, *, min_invocations: int = DEFAULT_MIN_INVOCATIONS) -> RollbackRule:
        """The rule of ``error_rate>0.05 over 5m``."""
        match = _RULE.match(text)
        if match is None:
            raise ValidationError(
                f"rollback: {text!r} is not a rule: write it as {RULE_FORM}", field="rollback"
            )
        try:
            rate = float(match.group(1))
        except ValueError:
            raise ValidationError(
                f"rollback: {match.group(1)!r} is not a number: write the rule as {RULE_FORM}",
                field="rollback",
            ) from None
        return cls(rate, parse_window(match.group(2)), min_invocations)

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> RollbackRule:
        """The rule of ``{"max_error_rate": 0.05, "window": "5m"}`` or of
        ``{"on": "error_rate>0.05 over 5m"}``, either with ``min_invocations``."""
        minimum = value.get("min_invocations", DEFAULT_MIN_INVOCATIONS)
        if set(value) <= {"on", "min_invocations"} and isinstance(value.get("on"), str):
            return cls.parse(value["on"], min_invocations=minimum)
        unknown = set(value) - {"max_error_rate", "window", "min_invocations"}
        if unknown or "max_error_rate" not in value or "window" not in value:
            raise ValidationError(
                'rollback: give max_error_rate (e.g. 0.05) and window (e.g. "5m"), or on '
                '("error_rate>0.05 over 5m"), and optionally min_invocations (default '
                f"{DEFAULT_MIN_INVOCATIONS})"
                + (f"; unknown: {', '.join(sorted(unknown))}" if unknown else ""),
                field="rollback",
            )
        return cls(value["max_error_rate"], parse_window(value["window"]), minimum)

    def to_json(self) -> dict[str, Any]:
        return {
            "max_error_rate": self.max_error_rate,
            "window": self.window,
            "min_invocations": self.min_invocations,
        }


class ReleaseWatcher:
    """Watches the weighted aliases that carry a rollback rule, every ``interval``
    seconds while ``leading()`` says this node leads."""

    def __init__(
        self,
        store: SqlStore,
        bus: Bus,
        *,
        aliases: Aliases,
        leading: Callable[[], bool],
        interval: float = CHECK_INTERVAL,
        retention: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._bus = bus
        self._aliases = aliases
        self._leading = leading
        self._interval = interval
        self._retention = retention
        self._clock = clock
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._watch(), name="releases")

    async def stop(self) -> None:
        await cancel_task(self._task)
        self._task = None

    async def check(self) -> list[AliasRecord]:
        """One pass: roll back each watched alias whose weighted version breaks its
        rule; the aliases rolled back."""
        rolled: list[AliasRecord] = []
        for record in await self._store.watched_aliases():
            seen = await self._breach(record)
            if seen is None:
                continue
            moved = await self._aliases.roll_back(record, seen)
            if moved is None:
                continue
            rolled.append(moved)
            log.warning(
                "rolled %s:%s back to version %s: version %s failed %d of %d invocations",
                record.function,
                record.name,
                seen["main_number"],
                seen["number"],
                seen["errors"],
                seen["invocations"],
            )
            await self._announce(record, seen)
        return rolled

    async def _breach(self, record: AliasRecord) -> dict[str, Any] | None:
        """What was seen of the weighted version when it breaks the rule, else None."""
        if record.rollback is None or record.additional_version is None:
            return None
        rule = RollbackRule.from_json(record.rollback)
        now = self._clock()
        since = max(now - rule.window, record.pinned_at or 0.0)
        usage = dict(await usage_by_version(self._store, function=record.function, since=since))
        seen = usage.get(record.additional_version)
        if seen is None or seen.requests < rule.min_invocations:
            return None
        rate = seen.errors / seen.requests
        if rate <= rule.max_error_rate:
            return None
        numbers = await self._aliases.numbers(record.function)
        return {
            "at": now,
            "version": record.additional_version,
            "number": numbers.get(record.additional_version),
            "main_version": record.version,
            "main_number": numbers.get(record.version),
            "weight": record.weight,
            "error_rate": rate,
            "errors": seen.errors,
            "invocations": seen.requests,
            "rule": rule.to_json(),
        }

    async def _announce(self, record: AliasRecord, seen: Mapping[str, Any]) -> None:
        event = new_event(
            ROLLED_BACK,
            SOURCE,
            {"function": record.function, "alias": record.name, **seen},
            subject=f"{record.function}:{record.name}",
        )
        try:
            try:
                await self._bus.publish(RELEASES_TOPIC, [event])
            except NotFoundError:  # the first rollback makes the topic
                await self._bus.create_topic(RELEASES_TOPIC, retention=self._retention)
                await self._bus.publish(RELEASES_TOPIC, [event])
        except Exception:
            # The rollback stands (it is in the store, shown by ``alias ls``) even when
            # its event could not be published.
            log.exception("could not publish the rollback of %s:%s", record.function, record.name)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            if not self._leading():
                continue
            try:
                await self.check()
            except Exception:
                log.exception("watching weighted aliases failed; will try again")
