"""The free space of the node's disk, and the threshold under which it takes no new events.

A node that lets its disk fill up stops everything: SQLite needs room to commit a
lease, an acknowledgement or a dead-letter as much as a new event. ``DiskSpace`` keeps
the last ``min_free_disk`` of the disk for that accepted work: below it, the entry
points of new events (ingest, webhooks, bucket uploads, asynchronous invokes) are
refused with ``LowDiskError`` (a 503 with ``Retry-After``) while deliveries go on.

The space is read with one ``statvfs`` at most once per ``interval``, on demand (every
refusal looks again, so work resumes by itself as soon as space returns) and by a
small background loop that notices the change when no request comes. Each change
between "low" and "enough" is logged once, not each refusal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from triggerfish.errors import AdapterError, ConfigError

log = logging.getLogger("triggerfish.disk")

#: With no setting: this share of the disk, or this many bytes, whichever is smaller.
DEFAULT_SHARE = 0.05
DEFAULT_BYTES = 500 * 1024 * 1024
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_AMOUNT = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(%|[kmgt]?i?b?)\s*", re.IGNORECASE)


class LowDiskError(AdapterError):
    """The disk is under the node's free-space threshold: no new events until it is not."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Threshold:
    """``share`` of the disk (0..1) or ``size`` bytes; both None: the default."""

    share: float | None = None
    size: int | None = None

    def bytes_of(self, total: int) -> int:
        if self.share is not None:
            return int(total * self.share)
        if self.size is not None:
            return self.size
        return min(int(total * DEFAULT_SHARE), DEFAULT_BYTES)


def parse_threshold(text: str) -> Threshold:
    """``min_free_disk`` as written in the settings: ``"5%"``, ``"500MB"``, ``"2GiB"``,
    a number of bytes, ``"0"`` (no threshold) or ``""`` (the default)."""
    if not text.strip():
        return Threshold()
    match = _AMOUNT.fullmatch(text)
    if match is None:
        raise ConfigError(
            f"min_free_disk: expected a share like '5%' or a size like '500MB', got {text!r}"
        )
    number, unit = float(match.group(1)), match.group(2).lower()
    if unit == "%":
        if number > 100:
            raise ConfigError(f"min_free_disk: a share is at most 100%, got {text!r}")
        return Threshold(share=number / 100)
    return Threshold(size=int(number * _UNITS[unit[:1]]))


@dataclass(frozen=True, slots=True)
class Space:
    free: int
    total: int
    needed: int

    @property
    def low(self) -> bool:
        return self.free < self.needed

    def describe(self) -> str:
        return f"{human(self.free)} free, needs {human(self.needed)}"


def human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


class DiskSpace:
    """The free space of the disk holding ``path`` against ``threshold``."""

    def __init__(
        self,
        path: Path,
        *,
        threshold: Threshold | None = None,
        interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        statvfs: Callable[[str], os.statvfs_result] = os.statvfs,
    ) -> None:
        self.path = Path(path)
        self.threshold = threshold or Threshold()
        self.interval = interval
        self._clock = clock
        self._statvfs = statvfs
        self._space: Space | None = None
        self._read_at = 0.0
        self._task: asyncio.Task[None] | None = None

    def space(self) -> Space:
        """The space now, read again when the last reading is older than ``interval``."""
        now = self._clock()
        if self._space is None or now - self._read_at >= self.interval:
            self._read_at = now
            self._note(self._read())
        assert self._space is not None
        return self._space

    @property
    def low(self) -> bool:
        return self.space().low

    def admit(self) -> None:
        """Raise ``LowDiskError`` when the disk is under the threshold: call it before
        taking a new event."""
        space = self.space()
        if space.low:
            raise LowDiskError(
                f"the node is low on disk space: {space.describe()}; retry later",
                retry_after=max(1.0, self.interval * 5),
            )

    async def start(self) -> None:
        """Check once (a node that starts low says so in one line) and watch the disk."""
        self.space()
        if self._task is None:
            self._task = asyncio.create_task(self._watch(), name="triggerfish-disk")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(max(self.interval, 1.0) * 5)
            self.space()

    def _read(self) -> Space:
        folder = self.path
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent  # the data directory may not be made yet
        try:
            stat = self._statvfs(str(folder))
        except OSError:
            # Cannot tell: assume enough rather than refuse every event.
            return Space(free=1, total=1, needed=0)
        total = stat.f_blocks * stat.f_frsize
        return Space(
            free=stat.f_bavail * stat.f_frsize, total=total, needed=self.threshold.bytes_of(total)
        )

    def _note(self, space: Space) -> None:
        before, self._space = self._space, space
        if space.low and (before is None or not before.low):
            log.warning(
                "the disk of the data directory is low on space (%s): new events are "
                "refused until space returns; deliveries of accepted ones go on",
                space.describe(),
            )
        elif not space.low and before is not None and before.low:
            log.warning("disk space is back (%s): new events are accepted again", space.describe())
