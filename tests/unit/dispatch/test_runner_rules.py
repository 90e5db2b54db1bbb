"""Every delivery rule of ``TriggerRunner``, in-process: the memory bus, a real store,
handlers called in this process and a clock the test moves (``triggerfish.testing``)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from triggerfish.clock import ManualClock
from triggerfish.context import Context
from triggerfish.dispatch.policy import RetryPolicy, Subscription
from triggerfish.dispatch.runner import ACK_DELAY, DEAD_LETTER_EXTENSIONS
from triggerfish.events.create import new_event
from triggerfish.runtime.base import FunctionSpec
from triggerfish.testing import Harness, InProcessExecutor

Handler = Callable[[Any, Context], Any]


class _Ceiling(random.Random):
    """Full jitter at its ceiling, so each backoff is known: backoff * 2**(attempt-1)."""

    def uniform(self, a: float, b: float) -> float:
        return b


def _spec(name: str, *, timeout: float = 10.0) -> FunctionSpec:
    return FunctionSpec(function=name, version="v1", code_dir=Path("."), handler="main.handler",
                        timeout=timeout)  # fmt: skip


def _harness(
    handlers: Mapping[str, Handler],
    *subscriptions: Subscription,
    topics: Mapping[str, float | None] | None = None,
    timeout: float = 10.0,
    lease_margin: float = 30.0,
) -> Harness:
    return Harness(
        {name: _spec(name, timeout=timeout) for name in handlers},
        subscriptions,
        InProcessExecutor(lambda spec: handlers[spec.function]),
        topics=topics,
        rand=_Ceiling(),
        lease_margin=lease_margin,
    )


def _sub(**options: Any) -> Subscription:
    defaults: dict[str, Any] = {"id": "f.in", "function": "f", "topic": "in"}
    return Subscription(**{**defaults, **options})


@pytest.fixture
def failing() -> Handler:
    def handler(event: Any, context: Context) -> Any:
        raise ValueError(f"no good: {event['data']}")

    return handler


def _in_flight(h: Harness, topic: str = "in", group: str = "f.in") -> tuple[int, int]:
    (info,) = [g for g in h.groups(topic) if g.group == group]
    return info.in_flight, info.waiting_retry


def test_a_pattern_lets_only_matching_events_through() -> None:
    seen: list[str] = []
    handlers = {"f": lambda event, context: seen.append(event["type"])}
    with _harness(handlers, _sub(filters=({"type": ["wanted"]},))) as h:
        h.publish("in", type="unwanted", data=1)
        h.publish("in", type="wanted", data=2)
        assert seen == ["wanted"]
        h.advance(ACK_DELAY)
        assert _in_flight(h) == (0, 0)  # the skipped event is acknowledged too


def test_acknowledgements_wait_the_ack_window_then_go_together() -> None:
    with _harness({"f": lambda event, context: "done"}, _sub()) as h:
        h.publish("in", type="a")
        h.publish("in", type="b")
        assert [i.status for i in h.invocations("f")] == ["ok", "ok"]
        assert _in_flight(h) == (2, 0)
        h.advance(ACK_DELAY / 2)
        assert _in_flight(h) == (2, 0)
        h.advance(ACK_DELAY / 2)
        assert _in_flight(h) == (0, 0)


def test_a_retry_comes_due_exactly_after_its_backoff(failing: Handler) -> None:
    retry = RetryPolicy(max_attempts=3, backoff=2.0)
    with _harness({"f": failing}, _sub(retry=retry)) as h:
        h.publish("in", type="t", data="x")
        assert [i.attempt for i in h.invocations("f")] == [1]
        assert _in_flight(h) == (0, 1)
        h.advance(1.75)
        assert [i.attempt for i in h.invocations("f")] == [1]
        h.advance(0.25)  # 2 s: backoff * 2**0
        assert [i.attempt for i in h.invocations("f")] == [1, 2]
        h.advance(3.5)
        assert len(h.invocations("f")) == 2
        h.advance(0.5)  # 4 s more: backoff * 2**1
        assert [i.attempt for i in h.invocations("f")] == [1, 2, 3]


def test_after_the_last_attempt_the_event_is_dead_lettered_with_its_error(
    failing: Handler,
) -> None:
    clock = ManualClock(start=1_700_000_000)
    sub = _sub(retry=RetryPolicy(max_attempts=2, backoff=1.0), dead_letter="in-failed")
    handlers = {"f": failing}
    with Harness({"f": _spec("f")}, [sub], InProcessExecutor(lambda s: handlers[s.function]),
                 clock=clock, rand=_Ceiling()) as h:  # fmt: skip
        event = h.publish("in", type="t", data="x")
        assert h.dead_letters("in-failed") == []
        h.advance(1.0)
        (letter,) = h.dead_letters("in-failed")
        h.advance(ACK_DELAY)
        assert _in_flight(h) == (0, 0)
    assert letter.id == event.id
    assert letter.data == event.data
    assert set(DEAD_LETTER_EXTENSIONS) <= set(letter.extensions)
    ext = letter.extensions
    assert (ext["errortype"], ext["errormessage"]) == ("ValueError", "no good: x")
    assert (ext["errorattempts"], ext["errortrigger"], ext["errorfunction"]) == (2, "f.in", "f")
    assert ext["errorreason"] == "gave up after 2 attempts"
    assert ext["errortime"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1_700_000_001))


def test_an_event_older_than_max_age_is_not_retried(failing: Handler) -> None:
    retry = RetryPolicy(max_attempts=10, max_age=5.0, backoff=4.0)
    with _harness({"f": failing}, _sub(retry=retry)) as h:
        h.publish("in", type="t", data="x")
        h.advance(4.0)  # attempt 2 at age 4: still young enough for another
        assert h.dead_letters("f.in.dlq") == []
        h.advance(8.0)  # attempt 3 at age 12
        assert [i.attempt for i in h.invocations("f")] == [1, 2, 3]
        (letter,) = h.dead_letters("f.in.dlq")
    assert letter.extensions["errorreason"] == "event older than max_age (5 s)"


def test_a_long_invocation_keeps_its_lease() -> None:
    async def slow(event: Any, context: Context) -> str:
        await asyncio.sleep(20.0)  # on the harness's clock
        return "finished"

    # A lease of 3 s (timeout 1 + margin 2): the handler outlives it many times over.
    with _harness({"f": slow}, _sub(), timeout=1.0, lease_margin=2.0) as h:
        h.publish("in", type="t")
        h.advance(19.0)
        assert h.invocations("f") == []
        assert _in_flight(h) == (1, 0)
        h.advance(1.0 + ACK_DELAY)
        [invocation] = h.invocations("f")
        assert (invocation.attempt, invocation.result) == (1, "finished")
        assert _in_flight(h) == (0, 0)


def test_a_batch_retries_only_the_items_it_reports_failed() -> None:
    def half(events: Any, context: Context) -> Any:
        bad = [e["id"] for e in events if e["data"] % 2]
        return {"batchItemFailures": [{"itemIdentifier": i} for i in bad]}

    sub = _sub(batch_size=4, retry=RetryPolicy(max_attempts=2, backoff=1.0))
    with _harness({"f": half}, sub) as h:
        events = [new_event("n", "test", n) for n in range(4)]
        h.publish_events("in", events)
        [first] = h.invocations("f")
        assert [e.id for e in first.events] == [e.id for e in events]
        h.advance(1.0)
        first, second = h.invocations("f")
        assert [e.data_value() for e in second.events] == [1, 3]
        assert second.attempt == 2
        letters = h.dead_letters("f.in.dlq")
    assert [e.data_value() for e in letters] == [1, 3]
    assert {e.extensions["errortype"] for e in letters} == {"BatchItemFailures"}


def test_emits_are_on_the_bus_before_the_event_is_acknowledged() -> None:
    def emitting(event: Any, context: Context) -> None:
        context.emit("out", "next", {"from": event["id"]})

    with _harness({"f": emitting}, _sub(), topics={"out": None}) as h:
        event = h.publish("in", type="t")
        (emitted,) = h.emitted("out")
        assert _in_flight(h) == (1, 0)  # not acknowledged yet
        h.advance(ACK_DELAY)
        assert _in_flight(h) == (0, 0)
        [invocation] = h.invocations("f")
    assert emitted.data_value() == {"from": event.id}
    assert emitted.extensions["causationid"] == event.id
    assert invocation.emitted == (emitted,)


def test_a_failed_invocation_emits_nothing() -> None:
    def emits_then_fails(event: Any, context: Context) -> None:
        context.emit("out", "next", {})
        raise RuntimeError("after the emit")

    with _harness({"f": emits_then_fails}, _sub(), topics={"out": None}) as h:
        h.publish("in", type="t")
        assert h.events("out") == []
        assert h.invocations("f")[0].error is not None


def test_an_emit_that_cannot_be_published_fails_the_invocation_and_is_retried() -> None:
    def emitting(event: Any, context: Context) -> None:
        context.emit("nowhere", "next", {})

    retry = RetryPolicy(max_attempts=2, backoff=1.0)
    with _harness({"f": emitting}, _sub(retry=retry)) as h:
        h.publish("in", type="t")
        [invocation] = h.invocations("f")
        assert invocation.status == "error"
        assert invocation.error is not None
        assert invocation.error.type == "EmitError"
        assert "nowhere" in invocation.error.message
        assert _in_flight(h) == (0, 1)  # released for a retry, not acknowledged
        h.advance(1.0)
        assert [i.attempt for i in h.invocations("f")] == [1, 2]
        assert [e.extensions["errortype"] for e in h.dead_letters("f.in.dlq")] == ["EmitError"]
