"""Batching windows: a batch is handed over when full (by count or bytes) or once its
window has passed since its first event was leased; ``Lane`` alone, then the runner on
the in-process harness with a clock the test moves."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from triggerfish.bus.base import Delivery
from triggerfish.context import Context
from triggerfish.dispatch.batching import Lane, event_size, key_reader
from triggerfish.dispatch.policy import RetryPolicy, Subscription
from triggerfish.events.create import new_event
from triggerfish.runtime.base import FunctionSpec
from triggerfish.testing import Harness, InProcessExecutor

Handler = Callable[[Any, Context], Any]


class _Ceiling(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return b


def _harness(handler: Handler, sub: Subscription, *, timeout: float = 10.0,
             lease_margin: float = 30.0, concurrency: int = 10) -> Harness:  # fmt: skip
    spec = FunctionSpec(function="f", version="v1", code_dir=Path("."), handler="main.handler",
                        timeout=timeout, max_concurrency=concurrency)  # fmt: skip
    return Harness({"f": spec}, [sub], InProcessExecutor(lambda s: handler),
                   rand=_Ceiling(), lease_margin=lease_margin)  # fmt: skip


def _sub(**options: Any) -> Subscription:
    return Subscription(**{"id": "f.in", "function": "f", "topic": "in", **options})


def _delivery(offset: int, data: Any = None) -> Delivery:
    event = new_event("t", "test", data)
    return Delivery("in", "g", offset, event, 1, 0.0, 60.0)


def _offsets(batches: Any) -> list[list[int]]:
    return [[d.offset for d in b.deliveries] for b in batches]


def test_without_a_window_a_lane_hands_over_what_it_has_at_once() -> None:
    lane = Lane(size=3)
    lane.add([_delivery(n) for n in range(1, 8)], now=0.0)
    assert _offsets(lane.take(0.0)) == [[1, 2, 3], [4, 5, 6], [7]]
    assert lane.next_due() is None


def test_a_window_holds_a_partial_batch_until_it_ends_from_its_first_event() -> None:
    lane = Lane(size=3, window=2.0)
    lane.add([_delivery(1)], now=10.0)
    lane.add([_delivery(2)], now=11.0)
    assert lane.take(11.9) == []
    assert lane.next_due() == 12.0
    assert _offsets(lane.take(12.0)) == [[1, 2]]
    lane.add([_delivery(n) for n in (3, 4, 5, 6)], now=13.0)
    assert _offsets(lane.take(13.0)) == [[3, 4, 5]]  # full: no wait
    assert lane.next_due() == 15.0


def test_max_bytes_closes_a_batch_and_a_large_event_goes_alone() -> None:
    events = [_delivery(n, "x" * size) for n, size in enumerate((100, 100, 100, 900, 10), 1)]
    two = event_size(events[0].event) * 2
    lane = Lane(size=10, window=5.0, max_bytes=two, sizer=event_size)
    lane.add(events, now=0.0)
    assert _offsets(lane.take(0.0)) == [[1, 2], [3], [4]]
    assert _offsets(lane.take(5.0)) == [[5]]


def test_an_ordered_lane_keeps_one_batch_per_key_and_retries_at_its_head() -> None:
    lane = Lane(size=2, key_of=key_reader("data.k"))
    lane.add([_delivery(n, {"k": k}) for n, k in enumerate("aaab", 1)], now=0.0)
    first = lane.take(0.0)
    assert _offsets(first) == [[1, 2], [4]]
    assert lane.take(0.0) == []  # key a is busy
    lane.finished(first[0], [first[0].deliveries[1]], due=3.0)  # 2 failed: back first
    assert lane.take(2.0) == []
    assert lane.next_due() == 3.0
    assert _offsets(lane.take(3.0)) == [[2, 3]]


def test_a_batch_waits_for_its_window_instead_of_going_one_by_one() -> None:
    sizes: list[int] = []
    sub = _sub(batch_size=5, batch_window=2.0)
    with _harness(lambda events, context: sizes.append(len(events)), sub) as h:
        h.publish("in", type="t", data=0)
        h.advance(1.0)
        h.publish("in", type="t", data=1)
        assert sizes == []
        h.advance(1.0)
        assert sizes == [2]
        h.publish_events("in", [new_event("t", "test", n) for n in range(5)])
        assert sizes == [2, 5]  # full: handed over at once
        [first, _] = h.invocations("f")
    assert [e.data_value() for e in first.events] == [0, 1]


def test_a_waiting_batch_keeps_its_leases() -> None:
    seen: list[int] = []

    def handler(events: Any, context: Context) -> None:
        seen.append(len(events))

    # Leases of 3 s (timeout 1 + margin 2) under a 20 s window.
    sub = _sub(batch_size=10, batch_window=20.0)
    with _harness(handler, sub, timeout=1.0, lease_margin=2.0) as h:
        h.publish("in", type="t", data=1)
        h.advance(19.0)
        assert seen == []
        h.advance(1.0)
        [invocation] = h.invocations("f")
    assert invocation.attempt == 1  # leased once: never delivered again meanwhile
    assert len(invocation.events) == 1


def test_partial_batch_failures_still_retry_only_the_items_named() -> None:
    def odd_fail(events: Any, context: Context) -> Any:
        bad = [e["id"] for e in events if e["data"] % 2]
        return {"batchItemFailures": [{"itemIdentifier": i} for i in bad]}

    sub = _sub(batch_size=4, batch_window=5.0, retry=RetryPolicy(max_attempts=2, backoff=1.0))
    with _harness(odd_fail, sub) as h:
        h.publish_events("in", [new_event("n", "test", n) for n in range(3)])
        assert h.invocations("f") == []
        h.advance(5.0)
        h.advance(6.0)  # the retry of 1 waits for its own window after its backoff
        first, second = h.invocations("f")
        letters = h.dead_letters("f.in.dlq")
    assert [e.data_value() for e in first.events] == [0, 1, 2]
    assert [e.data_value() for e in second.events] == [1]
    assert [e.data_value() for e in letters] == [1]
