"""The events a trigger leased and that wait for an invocation: which of them form the
next batch, and when it is handed over.

A ``Lane`` holds the waiting events of one topic of one trigger. Without ordering they
form one queue: a batch is the next ``size`` events, fewer when ``max_bytes`` is
reached first (an event larger than ``max_bytes`` goes alone). A batch that is not full
is handed over at once without a window, or once ``window`` has passed since its first
event was leased (Lambda's ``MaximumBatchingWindowInSeconds``).

With ordering, each value of the key has a queue of its own, kept in publish (offset)
order, and at most one batch in flight. A batch holds events of one key only,
consecutive in publish order; so a key's events never overtake each other, while other
keys' batches run beside it. A batch that failed goes back to the head of its key's
queue and is due again after its retry delay (``finished(..., retry, due)``): the
events behind it wait. Events without a value at the key path share the key ``None``
and are ordered among themselves like any other key.

Designs set aside: batches of the heads of distinct keys (one event per key per
invocation: a hot key is then never batched, and a partial failure of one item would
hold back every key of its batch), and handing failed events back to the bus for their
retry (the bus may then give the next event of the key to a fetch before the retry is
due, and after a restart nothing remembers that the key was waiting).

The lane is pure bookkeeping: times are passed in, nothing is awaited.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field

import orjson

from triggerfish.bus.base import Delivery
from triggerfish.events.model import Event, encode_event
from triggerfish.functions.flow import read_path

Key = Hashable | None
Sizer = Callable[[Event], int]


@dataclass(slots=True)
class Batch:
    """Events handed to one invocation, in publish order; ``key``: their ordering key
    (None on an unordered trigger, or for events without a value at the key path)."""

    deliveries: list[Delivery]
    key: Key = None


@dataclass(slots=True)
class _Waiting:
    delivery: Delivery
    leased_at: float
    size: int  # bytes, when max_bytes is set


@dataclass(slots=True)
class _Group:
    queue: deque[_Waiting] = field(default_factory=deque)
    busy: bool = False  # a batch of this key is in flight (ordered lanes only)
    due: float = 0.0  # not handed over before this time (a retry's delay)


class Lane:
    def __init__(
        self,
        *,
        size: int,
        window: float = 0.0,
        max_bytes: int = 0,
        key_of: Callable[[Event], Key] | None = None,
        sizer: Sizer | None = None,
    ) -> None:
        """``key_of``: the ordering key of an event; None for an unordered lane.
        ``sizer``: an event's size in bytes (needed with ``max_bytes``)."""
        self._size = size
        self._window = window
        self._max_bytes = max_bytes
        self._key_of = key_of
        self._sizer = sizer
        self._groups: dict[Key, _Group] = {}
        # Keys with waiting events and no batch in flight: the only ones to look at.
        self._ready: dict[Key, None] = {}
        self.waiting = 0
        # No order, window or byte bound: a batch is the next ``size`` events, formed as
        # they come, without the bookkeeping of keys and times (most triggers).
        self._direct = key_of is None and not window and not max_bytes
        self._pending: list[Delivery] = []

    @property
    def ordered(self) -> bool:
        return self._key_of is not None

    def add(self, deliveries: Iterable[Delivery], now: float) -> None:
        """Events just leased, to be handed over in offset order within their key."""
        if self._direct:
            before = len(self._pending)
            self._pending.extend(deliveries)
            self.waiting += len(self._pending) - before
            return
        key_of, sizer = self._key_of, self._sizer
        for delivery in deliveries:
            key = None if key_of is None else key_of(delivery.event)
            size = sizer(delivery.event) if sizer is not None and self._max_bytes else 0
            self._put(key, [_Waiting(delivery, now, size)], front=False)

    def take(self, now: float) -> list[Batch]:
        """The batches to hand over now; on an ordered lane their keys become busy."""
        if self._direct:
            pending, self._pending, self.waiting = self._pending, [], 0
            size = self._size
            if size == 1:
                return [Batch([delivery]) for delivery in pending]
            return [Batch(pending[at : at + size]) for at in range(0, len(pending), size)]
        out: list[Batch] = []
        for key in list(self._ready):
            group = self._groups[key]
            if group.due > now:
                continue
            while group.queue:
                batch = self._next(group, now)
                if batch is None:
                    break
                out.append(Batch(batch, key))
                if self.ordered:
                    group.busy = True
                    break
            if group.busy or not group.queue:
                del self._ready[key]
                if not group.queue and not group.busy:
                    del self._groups[key]
        return out

    def finished(self, batch: Batch, retry: Sequence[Delivery] = (), due: float = 0.0) -> None:
        """``batch`` is done with; ``retry``: its events to hand over again (ordered
        lanes), ahead of the rest of their key, not before ``due``."""
        if not self.ordered:
            return
        group = self._groups.get(batch.key)
        if group is None:
            group = self._groups[batch.key] = _Group()
        group.busy = False
        if retry:
            sizer = self._sizer if self._max_bytes else None
            waiting = [_Waiting(d, 0.0, sizer(d.event) if sizer else 0) for d in retry]
            self._put(batch.key, waiting, front=True)
            group.due = due
        if group.queue:
            self._ready[batch.key] = None
        else:
            del self._groups[batch.key]

    def next_due(self) -> float | None:
        """When a batch that ``take`` did not hand over may next be ready by the clock
        alone (a window or a retry delay ending); None when only new events or
        finished batches can make one ready."""
        due: float | None = None
        for key in self._ready:
            group = self._groups[key]
            if not group.queue:
                continue
            at = group.due
            if self._window:
                at = max(at, group.queue[0].leased_at + self._window)
            due = at if due is None else min(due, at)
        return due

    def drain(self) -> list[Delivery]:
        """Every waiting event, taken out of the lane (to give back to the bus)."""
        out = self._pending + [w.delivery for group in self._groups.values() for w in group.queue]
        self._pending = []
        for group in self._groups.values():
            group.queue.clear()
        self._ready.clear()
        self.waiting = 0
        return out

    def _put(self, key: Key, items: list[_Waiting], *, front: bool) -> None:
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group()
        queue = group.queue
        self.waiting += len(items)
        if front:
            queue.extendleft(reversed(items))
        elif not queue or queue[-1].delivery.offset < items[0].delivery.offset:
            queue.extend(items)
        else:
            # Leased out of offset order (a lease that ran out elsewhere came back late):
            # put it in its place, so the key still runs in publish order.
            merged = sorted([*queue, *items], key=lambda w: w.delivery.offset)
            queue.clear()
            queue.extend(merged)
        if not group.busy:
            self._ready[key] = None

    def _next(self, group: _Group, now: float) -> list[Delivery] | None:
        """The batch at the head of ``group`` if it is full or its window is over."""
        queue, limit, max_bytes = group.queue, self._size, self._max_bytes
        count = total = 0
        full = False
        for item in queue:
            if count == limit:
                full = True
                break
            if max_bytes and count and total + item.size > max_bytes:
                full = True
                break
            count += 1
            total += item.size
        else:
            full = count == limit
        if not full and self._window and now < queue[0].leased_at + self._window:
            return None
        self.waiting -= count
        return [queue.popleft().delivery for _ in range(count)]


def key_reader(path: str) -> Callable[[Event], Key]:
    """The ordering key of an event: the value at key path ``path`` (``data.customer``,
    ``partitionkey``), None when it has none. Values that are no JSON scalar are keyed
    by their JSON text."""

    def key_of(event: Event) -> Key:
        value = read_path(event, path)
        if value is None or isinstance(value, str | int | float):
            return value
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)

    return key_of


def event_size(event: Event) -> int:
    """Bytes an event takes in a batch (its encoded form)."""
    return len(encode_event(event))
