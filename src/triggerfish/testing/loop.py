"""An event loop on a manual clock, run in a thread, that says when it has nothing left
to do.

``ManualLoop`` is asyncio's selector loop whose ``time()`` is a ``ManualClock``: every
``asyncio.sleep``, ``wait_for`` timeout and ``call_later`` of the code it runs waits for
the test to move the clock, never for the wall clock. Its selector knows when the loop
is idle (no callback ready, no timer due): that is the moment the loop would sleep, and
the timeout it would sleep for names the next timer.

``LoopThread`` runs such a loop in a thread of its own, so a synchronous test (or an
``async def`` one, whose own loop is busy) drives it: ``call`` runs a coroutine there
and returns once the loop is idle again; ``advance`` moves the clock from one due timer
to the next, letting the loop settle at each, so work comes due in the order it would
on a real clock and none is skipped.

Work handed to other threads (a database driver's) is not seen by the idle check:
``call`` waits for the coroutine itself, so what a caller awaits is always finished.
"""

from __future__ import annotations

import asyncio
import selectors
import threading
from collections.abc import Coroutine, Mapping
from typing import Any, TypeVar

from triggerfish.clock import ManualClock

T = TypeVar("T")

#: Seconds a step may take before the loop is declared stuck (a handler that blocks).
SETTLE_TIMEOUT = 30.0
# Timers this close to the clock's time run now. asyncio adds the monotonic clock's
# resolution (a nanosecond), which is below the precision of a float holding a unix
# time: a timer due exactly now would then never run, and the loop would spin.
RESOLUTION = 1e-6


class LoopStuckError(RuntimeError):
    """The loop did not come to rest within ``SETTLE_TIMEOUT`` seconds."""


class _Idle:
    """What the selector saw the last time the loop had nothing to run."""

    def __init__(self) -> None:
        self.condition = threading.Condition()
        self.armed = False
        self.rests = 0  # times the loop came to rest after being armed
        self.next_due: float | None = None  # the earliest timer then, loop time

    def arm(self) -> None:
        """Called in the loop: the next rest counts."""
        with self.condition:
            self.armed = True


class _IdleSelector(selectors.BaseSelector):
    """A selector that notes each rest of the loop, then waits for I/O only: with the
    clock standing still, a timer comes due only after the test moves it (and wakes the
    loop), so there is nothing to wait for but I/O."""

    def __init__(self, inner: selectors.BaseSelector, idle: _Idle, clock: ManualClock) -> None:
        self._inner = inner
        self._idle = idle
        self._clock = clock

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None or timeout > 0:
            idle = self._idle
            with idle.condition:
                idle.next_due = None if timeout is None else self._clock.monotonic() + timeout
                if idle.armed:
                    idle.armed = False
                    idle.rests += 1
                    idle.condition.notify_all()
            timeout = None
        return self._inner.select(timeout)

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._inner.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.modify(fileobj, events, data)

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._inner.get_map()

    def close(self) -> None:
        self._inner.close()


class ManualLoop(asyncio.SelectorEventLoop):
    def __init__(self, clock: ManualClock) -> None:
        self.idle = _Idle()
        self.clock = clock
        super().__init__(_IdleSelector(selectors.DefaultSelector(), self.idle, clock))
        self._clock_resolution = RESOLUTION

    def time(self) -> float:
        return self.clock.monotonic()


class LoopThread:
    """A ``ManualLoop`` running in a daemon thread; ``close`` stops it."""

    def __init__(self, clock: ManualClock, *, name: str = "triggerfish-testing") -> None:
        self.clock = clock
        self.loop = ManualLoop(clock)
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def call(self, coroutine: Coroutine[Any, Any, T], *, timeout: float = SETTLE_TIMEOUT) -> T:
        """Run ``coroutine`` in the loop; return its result once the loop is idle."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            result = future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise LoopStuckError(
                f"the call did not finish within {timeout:g} s of real time; a handler"
                " that blocks, or waits for something only a moved clock brings"
                " (advance the clock instead of waiting for it)"
            ) from None
        self.settle()
        return result

    def settle(self, *, timeout: float = SETTLE_TIMEOUT) -> None:
        """Wait until everything that is due now has run."""
        idle = self.idle
        with idle.condition:
            rests = idle.rests
        self.loop.call_soon_threadsafe(idle.arm)
        with idle.condition:
            if not idle.condition.wait_for(lambda: idle.rests > rests, timeout):
                raise LoopStuckError(
                    f"the loop did not come to rest within {timeout:g} s of real time;"
                    " a handler that blocks or never stops?"
                )

    @property
    def idle(self) -> _Idle:
        return self.loop.idle

    def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` forward, stopping at each timer due on the way."""
        if not seconds >= 0:
            raise ValueError(f"advance by 0 or more seconds, not {seconds}")
        target = self.clock.time() + seconds
        self.settle()
        while True:
            with self.idle.condition:
                due = self.idle.next_due
            if due is None or due > target:
                break
            if due <= self.clock.time():
                raise LoopStuckError(f"a timer due at {due} does not run at {self.clock.time()}")
            self.clock.set(due)
            self.settle()
        self.clock.set(target)
        self.settle()

    def close(self) -> None:
        """Cancel what still runs in the loop, stop it and close it."""
        if self.loop.is_closed():
            return
        if self._thread.is_alive():
            wound = asyncio.run_coroutine_threadsafe(_wind_down(), self.loop)
            wound.result(SETTLE_TIMEOUT)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(SETTLE_TIMEOUT)
        self.loop.close()


async def _wind_down() -> None:
    current = asyncio.current_task()
    tasks = [task for task in asyncio.all_tasks() if task is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.get_running_loop().shutdown_default_executor()
