"""Pieces every bus implementation shares: error messages, wake-ups and the fetch wait loop.

``TopicSignals`` lets a ``fetch`` that found nothing sleep until something happens on its
topic (a publish, a release, a replay) instead of polling. ``wait_for_deliveries`` is the
one loop that turns a single non-blocking fetch into a fetch that waits up to ``wait``
seconds, waking on a signal or when the earliest pending retry or lease becomes due.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable, Callable
from typing import TypeVar

from triggerfish.errors import NotFoundError, ValidationError

T = TypeVar("T")

#: ``(deliveries, next_due)``: what one non-blocking fetch found, and the clock time at
#: which the group's earliest pending event becomes due again (``None`` when none is).
FetchOnce = Callable[[], Awaitable[tuple[list[T], float | None]]]


def unknown_topic(name: str) -> NotFoundError:
    return NotFoundError(
        f"topic {name!r} does not exist: create it with `triggerfish topics create {name}` "
        "or declare it in triggerfish.yaml"
    )


def unknown_group(topic: str, group: str) -> NotFoundError:
    return NotFoundError(
        f"consumer group {group!r} does not exist on topic {topic!r}: subscribe it first"
    )


def check_fetch_arguments(max_count: int, lease: float, wait: float) -> None:
    if max_count < 1:
        raise ValidationError(f"max_count must be at least 1, not {max_count}", field="max_count")
    if not lease > 0 or math.isinf(lease):
        raise ValidationError(
            f"lease must be a positive number of seconds, not {lease}", field="lease"
        )
    if not wait >= 0:
        raise ValidationError(f"wait must be zero or more seconds, not {wait}", field="wait")


def check_retention(retention: float | None) -> None:
    if retention is not None and not retention > 0:
        raise ValidationError(
            f"retention must be a positive number of seconds or None, not {retention}",
            field="retention",
        )


def check_topic_name(name: str) -> None:
    if not name or name != name.strip() or len(name) > 255:
        raise ValidationError(
            f"topic name {name!r} must be 1 to 255 characters without surrounding spaces",
            field="name",
        )


class TopicSignals:
    """One wake-up flag per topic; ``notify`` wakes every fetch waiting on that topic.

    A waiter takes ``current(topic)`` *before* it looks for events, so a notification
    that lands between the look and the sleep still wakes it.
    """

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    def current(self, topic: str) -> asyncio.Event:
        event = self._events.get(topic)
        if event is None:
            event = self._events[topic] = asyncio.Event()
        return event

    def notify(self, topic: str) -> None:
        event = self._events.pop(topic, None)
        if event is not None:
            event.set()

    def notify_all(self) -> None:
        events, self._events = self._events, {}
        for event in events.values():
            event.set()


async def wait_for_deliveries(
    signals: TopicSignals,
    topic: str,
    fetch_once: FetchOnce[T],
    *,
    wait: float,
    clock: Callable[[], float],
) -> list[T]:
    """Call ``fetch_once`` until it returns something or ``wait`` seconds have passed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        signal = signals.current(topic)
        found, next_due = await fetch_once()
        if found:
            return found
        remaining = deadline - loop.time()
        if remaining <= 0:
            return []
        timeout = remaining
        if next_due is not None:
            # Sleep no longer than until the earliest retry or expired lease is due;
            # a small floor keeps a clock that does not advance from spinning.
            timeout = min(timeout, max(next_due - clock(), 0.001))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(signal.wait(), timeout)
