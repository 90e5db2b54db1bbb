"""Flow control of one trigger: per-key concurrency, rate limits, debounce and priority.

The runner asks its ``FlowGate`` before it starts an invocation (``await
gate.admit(deliveries)``) and gives the ``Permit`` back when the invocation settled
(``permit.release()``). While an invocation waits in the gate its events stay leased
and held by the runner, whose lease keeper extends them: nothing waits unacknowledged
outside the bus's view, so a crash loses nothing and the bus delivers them again.

Rules, each optional (``FlowSettings``, from the trigger's manifest):

- ``concurrency``: at most ``limit`` invocations in flight per value of its key. The
  gate queues each key on its own, so a key at its limit holds back only its own
  events; the runner counts only admitted invocations against its lease window, so the
  events of a busy key do not keep other keys' events off the bus.
- ``rate``: at most ``limit`` invocations started in any window of ``period`` seconds
  per key: a sliding window over the start times, exact at every instant (a token
  bucket would let a full bucket through on top of the steady rate). Events over the
  rate wait; none is dropped.
- ``debounce``: an event waits ``period``; a later event of the same key arriving in
  that time takes its place, and the earlier one is acknowledged without an invocation
  (``Permit.superseded``; the runner keeps a record of it in ``<trigger>.debounced``).
- ``priority``: the waiting invocations that may start, highest priority first (then
  in arrival order). With a priority the gate also holds the trigger to the function's
  ``max_concurrency``, so the backlog waits here, in order, rather than in the
  executor's first-come queue.

On a cluster every node runs the trigger with its own gate; each takes an equal share
of the limits (``limit // nodes``, at least 1) of the running nodes it is told of, so
the cluster as a whole stays within them.

A batch is keyed by its first event and has the highest priority among its events.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import sys
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from triggerfish.bus.base import Bus, Delivery
from triggerfish.errors import NotFoundError
from triggerfish.events.model import Event
from triggerfish.functions.flow import (
    ConcurrencyOptions,
    DebounceOptions,
    PriorityOptions,
    RateOptions,
    event_data,
    read_path,
)

_WHOLE = ("",)  # the one key of a limit without a key path
# Invocations that may wait in one gate. Past this the runner leases no more: the rest
# of a backlog waits on the bus, and is taken as the gate drains.
MAX_WAITING = 4096
_PRUNE_AT = 1024  # keys with start times kept, past which idle ones are forgotten
_DATA_KEYS = ("data", "data.")


@dataclass(frozen=True, slots=True)
class FlowSettings:
    concurrency: ConcurrencyOptions | None = None
    rate: RateOptions | None = None
    debounce: DebounceOptions | None = None
    priority: PriorityOptions | None = None

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> FlowSettings | None:
        """The settings of a stored trigger config; None when it asks for none."""
        settings = cls(
            concurrency=_model(ConcurrencyOptions, config.get("concurrency")),
            rate=_model(RateOptions, config.get("rate")),
            debounce=_model(DebounceOptions, config.get("debounce")),
            priority=_model(PriorityOptions, config.get("priority")),
        )
        return settings if settings != cls() else None


def _model(model: Any, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(model, type) and isinstance(value, model):
        return value
    if model is PriorityOptions and isinstance(value, str):
        value = {"key": value}
    return model.model_validate(value)


class GateClosedError(Exception):
    """The runner stops: an invocation that waited in the gate does not start."""


class Permit:
    """Leave to start one invocation; ``release`` once it settled (any number of times)."""

    __slots__ = ("_gate", "_keys", "superseded")

    def __init__(
        self, gate: FlowGate | None, keys: tuple[Hashable, ...], *, superseded: bool = False
    ) -> None:
        self._gate = gate
        self._keys = keys
        #: True for an event a later one of its debounce key replaced: acknowledge it
        #: without an invocation.
        self.superseded = superseded

    def release(self) -> None:
        gate, self._gate = self._gate, None
        if gate is not None:
            gate._released(self._keys)


class _Waiting:
    __slots__ = ("future", "keys", "order")

    def __init__(self, keys: tuple[Hashable, ...], priority: float, seq: int) -> None:
        self.future: asyncio.Future[Permit] = asyncio.get_running_loop().create_future()
        self.keys = keys  # (concurrency key, rate key)
        self.order = (-priority, seq)

    def __lt__(self, other: _Waiting) -> bool:
        return self.order < other.order


class _Debounced:
    __slots__ = ("future", "newest", "timer")

    def __init__(self, newest: tuple[float, int], timer: asyncio.TimerHandle) -> None:
        self.future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.newest = newest
        self.timer = timer


class FlowGate:
    """``nodes``: how many nodes run the trigger now (1 alone); the limits are shared
    among them. ``on_wait``: called when an invocation starts to wait here, so the
    runner leases more (what waits here does not take room in its lease window)."""

    def __init__(
        self,
        settings: FlowSettings,
        *,
        nodes: Callable[[], int] | None = None,
        on_wait: Callable[[], object] | None = None,
    ) -> None:
        self.settings = settings
        self._nodes = nodes or (lambda: 1)
        self._on_wait = on_wait or (lambda: None)
        self._seq = itertools.count()
        self._lanes: dict[tuple[Hashable, ...], list[_Waiting]] = {}
        self._running: dict[Hashable, int] = {}
        self._total = 0
        self._starts: dict[Hashable, deque[float]] = {}
        self._debouncing: dict[Hashable, _Debounced] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_due = 0.0
        self._closed = False
        self._slots = 1
        s = settings
        paths = [_path(s.concurrency), _path(s.rate), _path(s.debounce), _path(s.priority)]
        self._reads_data = any(p is not None and p.startswith(_DATA_KEYS) for p in paths)
        self.waiting = 0  # invocations in the gate, debounced ones included
        self.waiting_events = 0  # their events
        self.superseded = 0  # events a later one replaced, since the start

    @property
    def queues(self) -> bool:
        """Whether invocations may wait here for another reason than debounce."""
        s = self.settings
        return s.concurrency is not None or s.rate is not None or s.priority is not None

    async def admit(self, deliveries: Sequence[Delivery], *, slots: int) -> Permit:
        """Wait until the invocation of ``deliveries`` may start. ``slots``: the
        function's ``max_concurrency``. ``GateClosedError`` once the gate is closed."""
        if self._closed:
            raise GateClosedError("the trigger stops")
        event = deliveries[0].event
        data = event_data(event) if self._reads_data else None
        self.waiting += 1
        self.waiting_events += len(deliveries)
        try:
            if self.settings.debounce is not None:
                newest = max((d.published_at, d.offset) for d in deliveries)
                if not await self._debounce(_key(event, self.settings.debounce.key, data), newest):
                    self.superseded += len(deliveries)
                    return Permit(None, (), superseded=True)
            if not self.queues:
                return Permit(None, ())
            keys = (
                _key(event, _path(self.settings.concurrency), data),
                _key(event, _path(self.settings.rate), data),
            )
            waiting = _Waiting(keys, self._priority(deliveries, data), next(self._seq))
            heapq.heappush(self._lanes.setdefault(keys, []), waiting)
            self._pump(slots)
            if not waiting.future.done():
                self._on_wait()
            try:
                return await waiting.future
            except asyncio.CancelledError:
                if waiting.future.done() and not waiting.future.cancelled():
                    waiting.future.result().release()
                else:
                    self._forget(waiting)
                raise
        finally:
            self.waiting -= 1
            self.waiting_events -= len(deliveries)

    def occupied(self, held: int) -> int:
        """How much of the runner's lease window its ``held`` events take: not those
        waiting here (a key over its limit must not keep the other keys' events off
        the bus), unless the gate is full."""
        if self.waiting >= MAX_WAITING:
            return sys.maxsize
        return held - self.waiting_events

    def close(self) -> None:
        """Fail every waiting ``admit`` with ``GateClosedError``; invocations admitted
        already run on."""
        self._closed = True
        error = GateClosedError("the trigger stops")
        for pending in self._debouncing.values():
            pending.timer.cancel()
            if not pending.future.done():
                pending.future.set_exception(error)
        self._debouncing.clear()
        for lane in self._lanes.values():
            for waiting in lane:
                if not waiting.future.done():
                    waiting.future.set_exception(error)
        self._lanes.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- debounce ---------------------------------------------------------------------

    async def _debounce(self, key: Hashable, newest: tuple[float, int]) -> bool:
        """True when this event ends its burst, False when a later one replaced it."""
        assert self.settings.debounce is not None
        period = self.settings.debounce.period
        loop = asyncio.get_running_loop()
        pending = self._debouncing.get(key)
        if pending is not None and newest < pending.newest:
            return False  # an older event (a redelivery) arriving after a newer one
        if pending is not None:
            pending.timer.cancel()
            if not pending.future.done():
                pending.future.set_result(False)
        timer = loop.call_later(period, self._burst_over, key)
        pending = self._debouncing[key] = _Debounced(newest, timer)
        self._on_wait()
        try:
            return await pending.future
        except asyncio.CancelledError:
            if self._debouncing.get(key) is pending:
                pending.timer.cancel()
                del self._debouncing[key]
            raise

    def _burst_over(self, key: Hashable) -> None:
        pending = self._debouncing.pop(key, None)
        if pending is not None and not pending.future.done():
            pending.future.set_result(True)

    # -- admission --------------------------------------------------------------------

    def _pump(self, slots: int) -> None:
        """Start what may start, best first; wake up again when a rate allows more."""
        self._slots = slots
        s = self.settings
        nodes = max(1, self._nodes())
        concurrency = None if s.concurrency is None else _share(s.concurrency.limit, nodes)
        rate = None if s.rate is None else _share(s.rate.limit, nodes)
        total = slots if s.priority is not None else None
        loop = asyncio.get_running_loop()
        now = loop.time()
        wake: float | None = None
        while self._lanes and (total is None or self._total < total):
            best: _Waiting | None = None
            for keys, lane in list(self._lanes.items()):
                while lane and lane[0].future.done():
                    heapq.heappop(lane)
                if not lane:
                    del self._lanes[keys]
                    continue
                head = lane[0]
                if best is not None and best < head:
                    continue
                if concurrency is not None and self._running.get(keys[0], 0) >= concurrency:
                    continue
                if rate is not None and s.rate is not None:
                    free_at = self._rate_free_at(keys[1], rate, s.rate.period, now)
                    if free_at > now:
                        wake = free_at if wake is None else min(wake, free_at)
                        continue
                best = head
            if best is None:
                break
            heapq.heappop(self._lanes[best.keys])
            self._running[best.keys[0]] = self._running.get(best.keys[0], 0) + 1
            self._total += 1
            if rate is not None:
                if best.keys[1] not in self._starts and len(self._starts) >= _PRUNE_AT:
                    self._prune(now)
                self._starts.setdefault(best.keys[1], deque()).append(now)
            best.future.set_result(Permit(self, best.keys))
        if wake is not None and (self._timer is None or wake < self._timer_due):
            if self._timer is not None:
                self._timer.cancel()
            self._timer_due = wake
            self._timer = loop.call_at(wake, self._woken)

    def _woken(self) -> None:
        self._timer = None
        if not self._closed:
            self._pump(self._slots)

    def _rate_free_at(self, key: Hashable, limit: int, period: float, now: float) -> float:
        """When the next invocation of ``key`` may start: ``now`` when it may now."""
        starts = self._starts.get(key)
        if starts is None:
            return now
        while starts and starts[0] <= now - period:
            starts.popleft()
        if len(starts) < limit:
            if not starts:
                del self._starts[key]
            return now
        return starts[-limit] + period

    def _prune(self, now: float) -> None:
        """Forget the start times of keys that started nothing for a whole period."""
        assert self.settings.rate is not None
        since = now - self.settings.rate.period
        for key in [k for k, starts in self._starts.items() if not starts or starts[-1] <= since]:
            del self._starts[key]

    def _released(self, keys: tuple[Hashable, ...]) -> None:
        left = self._running[keys[0]] - 1
        if left:
            self._running[keys[0]] = left
        else:
            del self._running[keys[0]]
        self._total -= 1
        if self._lanes and not self._closed:
            self._pump(self._slots)

    def _forget(self, waiting: _Waiting) -> None:
        lane = self._lanes.get(waiting.keys)
        if lane is not None and waiting in lane:
            lane.remove(waiting)
            heapq.heapify(lane)
            if not lane:
                del self._lanes[waiting.keys]

    def _priority(self, deliveries: Sequence[Delivery], data: Any) -> float:
        option = self.settings.priority
        if option is None:
            return 0.0
        best: float | None = None
        for i, delivery in enumerate(deliveries):
            value = read_path(delivery.event, option.key, data if i == 0 else None)
            number = (
                float(value)
                if isinstance(value, int | float) and not isinstance(value, bool)
                else option.default
            )
            best = number if best is None else max(best, number)
        return option.default if best is None else best


def _path(option: Any) -> str | None:
    return None if option is None else option.key


def _share(limit: int, nodes: int) -> int:
    return max(1, limit // nodes)


def _key(event: Event, path: str | None, data: Any) -> Hashable:
    """The key value ``path`` reads from ``event``, as something a dict can hold."""
    if path is None:
        return _WHOLE
    value = read_path(event, path, data)
    if value is None or isinstance(value, str | int | float | bool):
        # Kept apart by type: 1, 1.0, True and "1" are four keys.
        return (type(value).__name__, value)
    return ("json", orjson.dumps(value, option=orjson.OPT_SORT_KEYS))


async def record_superseded(bus: Bus, topic: str, deliveries: Sequence[Delivery]) -> None:
    """Keep the events a later one replaced in ``topic`` (``<trigger>.debounced``), so a
    user sees which were not run; the topic is created when it is missing."""
    events = [d.event for d in deliveries]
    try:
        await bus.publish(topic, events, dedupe=False)
    except NotFoundError:
        await bus.create_topic(topic)
        await bus.publish(topic, events, dedupe=False)
