"""Where the delivery core reads the time: the system's clock on a node, a clock the
test moves in ``triggerfish.testing``.

A ``Clock`` gives wall time (``time``: unix seconds, what the bus stamps on an event and
a retry's due time and an event's age are measured in) and ``monotonic`` time. Sleeps
and timeouts are not part of it: they follow the running event loop's ``time()``, which
``triggerfish.testing`` runs on the manual clock, so ``asyncio.sleep`` and
``asyncio.wait_for`` need no rewiring.

``SYSTEM_CLOCK`` hands out ``time.time`` and ``time.monotonic`` themselves, so a node
pays one attribute look-up for the indirection.
"""

from __future__ import annotations

import threading
from time import monotonic as _monotonic
from time import time as _wall
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Unix seconds."""

    def monotonic(self) -> float:
        """Seconds that never go backwards, from an arbitrary start."""


class SystemClock:
    """The operating system's clocks."""

    time = staticmethod(_wall)
    monotonic = staticmethod(_monotonic)


SYSTEM_CLOCK: Clock = SystemClock()


class ManualClock:
    """A clock that stands still until ``advance`` (or ``set``) moves it forward.

    Its wall time and its monotonic time are the same number, so a due time computed on
    one and waited for on the other meet exactly. It may be read from any thread.
    """

    def __init__(self, start: float | None = None) -> None:
        # Whole seconds: every instant the tests name (start + 30, start + 0.5) is exact.
        self._now = float(int(_wall() if start is None else start))
        self._lock = threading.Lock()

    def time(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds``; returns the new time."""
        if not seconds >= 0:
            raise ValueError(f"a clock only moves forward: advance by 0 or more, not {seconds}")
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, when: float) -> None:
        """Move forward to ``when`` (unix seconds); a time already past is an error."""
        with self._lock:
            if when < self._now:
                raise ValueError(
                    f"a clock only moves forward: {when} is before its time {self._now}"
                )
            self._now = when
