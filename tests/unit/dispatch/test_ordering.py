"""Ordering keys: events of one key are handled one batch at a time in publish order,
other keys beside them; a failing event holds back its own key only, until it succeeds
or is dead-lettered. On the in-process harness, with a clock the test moves."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from triggerfish.context import Context
from triggerfish.dispatch.policy import RetryPolicy, Subscription
from triggerfish.events.create import new_event
from triggerfish.runtime.base import FunctionSpec
from triggerfish.testing import Harness, InProcessExecutor

Handler = Callable[[Any, Context], Any]


class _Ceiling(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return b


def _harness(handler: Handler, sub: Subscription, *, concurrency: int = 10) -> Harness:
    spec = FunctionSpec(function="f", version="v1", code_dir=Path("."), handler="main.handler",
                        max_concurrency=concurrency)  # fmt: skip
    return Harness({"f": spec}, [sub], InProcessExecutor(lambda s: handler), rand=_Ceiling())


def _sub(**options: Any) -> Subscription:
    defaults: dict[str, Any] = {"id": "f.in", "function": "f", "topic": "in",
                                "ordering_key": "data.k"}  # fmt: skip
    return Subscription(**{**defaults, **options})


def test_ten_thousand_events_keep_their_order_per_key_through_retries() -> None:
    done: dict[str, list[int]] = defaultdict(list)
    running: dict[str, int] = defaultdict(int)
    failed_once: set[int] = set()
    overlaps: list[str] = []
    peak = [0, 0]  # in flight now, most at once

    async def handler(event: Any, context: Context) -> None:
        key, n = event["data"]["k"], event["data"]["n"]
        running[key] += 1
        peak[0] += 1
        peak[1] = max(peak)
        if running[key] > 1:
            overlaps.append(key)
        try:
            await asyncio.sleep(0.01)  # on the harness's clock: others run meanwhile
            if n % 7 == 3 and n not in failed_once:
                failed_once.add(n)
                raise RuntimeError(f"first try of {n} fails")
            done[key].append(n)
        finally:
            running[key] -= 1
            peak[0] -= 1

    sub = _sub(retry=RetryPolicy(max_attempts=3, backoff=1.0))
    events = [new_event("t", "test", {"k": f"key{n % 100}", "n": n}) for n in range(10_000)]
    with _harness(handler, sub, concurrency=8) as h:
        h.publish_events("in", events)
        h.advance(60.0)
        assert h.dead_letters("f.in.dlq") == []
    assert overlaps == []
    assert peak[1] > 1  # keys did run beside each other
    assert len(failed_once) == len([n for n in range(10_000) if n % 7 == 3])
    assert sorted(done) == sorted(f"key{k}" for k in range(100))
    for key, seen in done.items():
        assert seen == sorted(seen), key
        assert len(seen) == 100, key


def test_a_failing_event_holds_back_its_key_only_until_it_is_dead_lettered() -> None:
    seen: list[str] = []

    def handler(event: Any, context: Context) -> None:
        name = event["data"]["name"]
        seen.append(name)
        if name == "a1":
            raise ValueError("a1 never works")

    sub = _sub(retry=RetryPolicy(max_attempts=3, backoff=1.0))
    with _harness(handler, sub) as h:
        names = ["a1", "b1", "a2", "b2"]
        h.publish_events("in", [new_event("t", "test", {"k": n[0], "name": n}) for n in names])
        assert seen == ["a1", "b1", "b2"]  # b runs on; a2 waits behind a1
        h.advance(1.0)
        assert seen[3:] == ["a1"]  # the retry, still ahead of a2
        h.advance(1.9)
        assert "a2" not in seen
        h.advance(0.1)  # the third and last attempt fails: a1 is dead-lettered
        [letter] = h.dead_letters("f.in.dlq")
        assert seen[-2:] == ["a1", "a2"]
        attempts = [i.attempt for i in h.invocations("f") if i.events[0].id == letter.id]
    assert attempts == [1, 2, 3]
    assert letter.extensions["errorreason"] == "gave up after 3 attempts"


def test_events_without_the_key_share_one_group() -> None:
    order: list[int] = []

    async def handler(event: Any, context: Context) -> None:
        await asyncio.sleep(1.0 if event["data"]["n"] == 0 else 0.0)
        order.append(event["data"]["n"])

    with _harness(handler, _sub()) as h:
        h.publish_events("in", [new_event("t", "test", {"n": n}) for n in range(3)])
        h.advance(1.0)
    assert order == [0, 1, 2]  # the slow first one is not overtaken


def test_an_ordered_batch_retries_from_its_first_failed_item() -> None:
    batches: list[list[str]] = []

    def handler(events: Any, context: Context) -> Any:
        names = [e["data"]["name"] for e in events]
        batches.append(names)
        if len(batches) == 1:
            return {"batchItemFailures": [{"itemIdentifier": events[1]["id"]}]}
        return None

    sub = _sub(batch_size=3, retry=RetryPolicy(max_attempts=3, backoff=1.0))
    with _harness(handler, sub) as h:
        names = ["a1", "a2", "a3", "a4"]
        h.publish_events("in", [new_event("t", "test", {"k": "a", "name": n}) for n in names])
        assert batches == [["a1", "a2", "a3"]]
        h.advance(1.0)
    assert batches == [["a1", "a2", "a3"], ["a2", "a3", "a4"]]
