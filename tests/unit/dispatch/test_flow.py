"""Flow control of a trigger (``dispatch/flow.py``) as the runner applies it: per-key
concurrency, rate limits, debounce and priority, in-process on a clock the test moves."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from triggerfish.bus.base import Delivery
from triggerfish.cluster import Membership
from triggerfish.context import Context
from triggerfish.dispatch.dispatcher import trigger_subscription
from triggerfish.dispatch.flow import FlowGate, FlowSettings
from triggerfish.dispatch.policy import Subscription
from triggerfish.dispatch.runner import ACK_DELAY, TriggerRunner
from triggerfish.errors import ConfigError
from triggerfish.events.create import new_event
from triggerfish.functions import TriggerConfig, load_manifest
from triggerfish.functions.flow import (
    ConcurrencyOptions,
    DebounceOptions,
    PriorityOptions,
    RateOptions,
)
from triggerfish.runtime.base import FunctionSpec
from triggerfish.store import SqlStore
from triggerfish.store.records import TriggerRecord
from triggerfish.testing import Harness, InProcessExecutor

Handler = Callable[[Any, Context], Any]


def _harness(handler: Handler, flow: FlowSettings, *, max_concurrency: int = 10) -> Harness:
    spec = FunctionSpec(function="f", version="v1", code_dir=Path("."), handler="main.handler",
                        timeout=60.0, max_concurrency=max_concurrency)  # fmt: skip
    sub = Subscription(id="f.in", function="f", topic="in", flow=flow)
    return Harness({"f": spec}, [sub], InProcessExecutor(lambda spec: handler))


class _Starts:
    """A handler that notes when (on the harness's clock) each event started, then
    takes ``seconds`` on that clock."""

    def __init__(self, h: Callable[[], Harness], seconds: float = 0.0) -> None:
        self._h = h
        self.seconds = seconds
        self.started: list[tuple[float, Any]] = []

    async def __call__(self, event: Any, context: Context) -> None:
        self.started.append((self._h().clock.time(), event["data"]))
        if self.seconds:
            await asyncio.sleep(self.seconds)


def _publish(h: Harness, *data: Any) -> None:
    h.publish_events("in", [new_event("t", "test", d) for d in data])


def _settled(h: Harness) -> tuple[int, int, int]:
    """(backlog, leased, waiting for a retry) of the trigger on the bus."""
    (info,) = [g for g in h.groups("in") if g.group == "f.in"]
    return info.backlog, info.in_flight, info.waiting_retry


# -- concurrency -------------------------------------------------------------------------


def test_a_key_never_has_more_than_its_limit_in_flight() -> None:
    h: Harness
    starts = _Starts(lambda: h, seconds=10.0)
    flow = FlowSettings(concurrency=ConcurrencyOptions(limit=2, key="data.tenant"))
    with _harness(starts, flow) as h:
        t0 = h.clock.time()
        _publish(h, *({"tenant": "a", "n": n} for n in range(5)))
        assert len(starts.started) == 2
        h.advance(10.0)
        assert len(starts.started) == 4
        h.advance(10.0)
        assert len(starts.started) == 5
        h.advance(10.0 + ACK_DELAY)
        assert [s - t0 for s, _ in starts.started] == [0, 0, 10, 10, 20]
        assert [d["n"] for _, d in starts.started] == [0, 1, 2, 3, 4]
        assert _settled(h) == (0, 0, 0)


def test_a_tenant_over_its_concurrency_limit_does_not_slow_another_tenant() -> None:
    h: Harness
    starts = _Starts(lambda: h, seconds=10.0)
    flow = FlowSettings(concurrency=ConcurrencyOptions(limit=1, key="data.tenant"))
    # A lease window of 2 x 8 invocations: tenant a's backlog alone is larger.
    with _harness(starts, flow, max_concurrency=2) as h:
        t0 = h.clock.time()
        _publish(h, *({"tenant": "a", "n": n} for n in range(40)))
        _publish(h, {"tenant": "b", "n": 0})
        assert [(s - t0, d["tenant"]) for s, d in starts.started] == [(0, "a"), (0, "b")]
        h.advance(10.0)
        # b is done after its own 10 s; a goes on, one at a time.
        assert [d["tenant"] for _, d in starts.started] == ["a", "b", "a"]
        _publish(h, {"tenant": "b", "n": 1})
        assert starts.started[-1][1] == {"tenant": "b", "n": 1}
        assert starts.started[-1][0] - t0 == 10.0


# -- rate --------------------------------------------------------------------------------


def test_the_rate_limit_holds_within_five_percent_over_ten_seconds() -> None:
    h: Harness
    starts = _Starts(lambda: h)
    flow = FlowSettings(rate=RateOptions(limit=100, period=1.0))
    with _harness(starts, flow) as h:
        t0 = h.clock.time()
        _publish(h, *range(1500))
        for _ in range(40):
            h.advance(0.25)
        times = [s - t0 for s, _ in starts.started]
        in_ten = [t for t in times if t < 10.0]
        assert 950 <= len(in_ten) <= 1000
        # No window of one second ever saw more than the limit start.
        assert max(sum(1 for t in times if a <= t < a + 1.0) for a in times) <= 100
        h.advance(5.0 + ACK_DELAY)
        # Events over the rate waited; none was dropped.
        assert sorted(d for _, d in starts.started) == list(range(1500))
        assert _settled(h) == (0, 0, 0)


def test_a_rate_per_key_does_not_hold_back_other_keys() -> None:
    h: Harness
    starts = _Starts(lambda: h)
    flow = FlowSettings(rate=RateOptions(limit=2, period=1.0, key="data.tenant"))
    with _harness(starts, flow) as h:
        _publish(h, *({"tenant": "a", "n": n} for n in range(6)))
        _publish(h, {"tenant": "b", "n": 0})
        assert Counter(d["tenant"] for _, d in starts.started) == {"a": 2, "b": 1}
        h.advance(1.0)
        assert Counter(d["tenant"] for _, d in starts.started) == {"a": 4, "b": 1}


# -- debounce ----------------------------------------------------------------------------


def test_debounce_runs_only_the_last_event_of_a_burst_and_records_the_others() -> None:
    h: Harness
    starts = _Starts(lambda: h)
    flow = FlowSettings(debounce=DebounceOptions(period=5.0, key="data.doc"))
    with _harness(starts, flow) as h:
        t0 = h.clock.time()
        _publish(h, {"doc": 1, "v": 1})
        h.advance(1.0)
        _publish(h, {"doc": 1, "v": 2}, {"doc": 2, "v": 1})
        h.advance(1.0)
        _publish(h, {"doc": 1, "v": 3})
        h.advance(4.9)
        assert [d for _, d in starts.started] == [{"doc": 2, "v": 1}]
        h.advance(0.1)  # 5 s after doc 1's last event
        assert [(s - t0, d) for s, d in starts.started] == [
            (6.0, {"doc": 2, "v": 1}),
            (7.0, {"doc": 1, "v": 3}),
        ]
        skipped = [e.data_value() for e in h.events("f.in.debounced")]
        h.advance(ACK_DELAY)
        assert _settled(h) == (0, 0, 0)  # the replaced ones are acknowledged too
        assert {i.event.data_value()["v"] for i in h.invocations("f") if i.event} == {1, 3}
    assert skipped == [{"doc": 1, "v": 1}, {"doc": 1, "v": 2}]


def test_a_debounced_event_keeps_its_lease_while_it_waits() -> None:
    h: Harness
    starts = _Starts(lambda: h)
    # A debounce longer than the lease (the function's 60 s timeout plus 30 s).
    flow = FlowSettings(debounce=DebounceOptions(period=300.0))
    with _harness(starts, flow) as h:
        _publish(h, "only")
        h.advance(299.0)
        assert starts.started == []
        assert _settled(h) == (0, 1, 0)  # still leased, never handed out again
        h.advance(1.0 + ACK_DELAY)
        assert [d for _, d in starts.started] == ["only"]
        assert [i.attempt for i in h.invocations("f")] == [1]
        assert _settled(h) == (0, 0, 0)


# -- priority ----------------------------------------------------------------------------


def test_a_backlog_runs_highest_priority_first() -> None:
    h: Harness
    starts = _Starts(lambda: h, seconds=1.0)
    flow = FlowSettings(priority=PriorityOptions(key="data.p", default=2))
    with _harness(starts, flow, max_concurrency=1) as h:
        _publish(h, {"n": "busy", "p": 0})
        _publish(h, {"n": "low", "p": 1}, {"n": "none"}, {"n": "high", "p": 9},
                 {"n": "mid", "p": 5}, {"n": "text", "p": "urgent"})  # fmt: skip
        h.advance(10.0)
    assert [d["n"] for _, d in starts.started] == ["busy", "high", "mid", "none", "text", "low"]


# -- stop, crash ---------------------------------------------------------------------------


def test_events_waiting_in_the_gate_are_delivered_again_after_the_runner_stops() -> None:
    h: Harness
    starts = _Starts(lambda: h, seconds=30.0)
    flow = FlowSettings(concurrency=ConcurrencyOptions(limit=1))
    with _harness(starts, flow) as h:
        _publish(h, "a", "b", "c")
        assert [d for _, d in starts.started] == ["a"]
        (first,) = h._runners
        h.run(lambda: first.stop(grace=0.0))
        # Nothing was acknowledged, nothing stays leased: all three are back on the bus
        # for the next runner, at once.
        backlog, leased, released = _settled(h)
        assert (backlog + released, leased) == (3, 0)
        starts.seconds = 0.0
        second = TriggerRunner(h.subscriptions[0], h.bus, h.executor, resolve=h._resolve,
                               recorder=h.recorder, emitter=h.emitter, clock=h.clock)  # fmt: skip
        h._runners.append(second)
        h.run(second.start)
        h.advance(ACK_DELAY)
        assert sorted(d for _, d in starts.started[1:]) == ["a", "b", "c"]
        assert _settled(h) == (0, 0, 0)


def test_events_waiting_in_the_gate_of_a_dead_runner_come_back_after_their_lease() -> None:
    h: Harness
    starts = _Starts(lambda: h, seconds=1000.0)
    flow = FlowSettings(concurrency=ConcurrencyOptions(limit=1))
    with _harness(starts, flow) as h:
        _publish(h, "a", "b")
        (runner,) = h._runners

        async def die() -> None:
            # kill -9: every task of the runner ends, nothing is released or acknowledged
            tasks = [*runner._loops, *runner._keepers, *runner._inflight]
            for task in tasks:
                task.cancel()
                task.remove_done_callback(runner._finished)
            runner._release = _no_release  # type: ignore[method-assign]
            await asyncio.gather(*tasks, return_exceptions=True)

        h.run(die)
        h._runners.clear()
        assert _settled(h) == (0, 2, 0)
        second = TriggerRunner(h.subscriptions[0], h.bus, h.executor, resolve=h._resolve,
                               recorder=h.recorder, emitter=h.emitter, clock=h.clock)  # fmt: skip
        h._runners.append(second)
        h.run(second.start)
        starts.seconds = 0.0
        h.advance(90.0 + ACK_DELAY)  # the lease: timeout 60 s + margin 30 s
        assert sorted(d for _, d in starts.started) == ["a", "a", "b"]
        assert _settled(h) == (0, 0, 0)


async def _no_release(topic: str, offsets: Any) -> None:
    return None


# -- cluster -----------------------------------------------------------------------------


async def test_on_a_cluster_each_node_takes_its_share_of_the_limits() -> None:
    nodes = 3
    gate = FlowGate(
        FlowSettings(
            concurrency=ConcurrencyOptions(limit=7, key="data.t"),
            rate=RateOptions(limit=1000, period=1.0),
        ),
        nodes=lambda: nodes,
    )
    waiting = [asyncio.create_task(gate.admit([_delivery(n, {"t": 1})], slots=100))
               for n in range(5)]  # fmt: skip
    await asyncio.sleep(0)
    admitted = [t for t in waiting if t.done()]
    assert len(admitted) == 2  # 7 // 3 on this node
    nodes = 1
    admitted[0].result().release()  # the next pass sees the whole cluster's limit again
    await asyncio.sleep(0)
    assert sum(t.done() for t in waiting) == 5
    gate.close()


async def test_the_nodes_sharing_the_limits_are_the_running_members(tmp_path: Path) -> None:
    async with SqlStore(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}") as store:
        a, b = (
            Membership(
                store.cluster,
                node_id=n,
                address="",
                version="",
                report=dict,
                interval=0.02,
                gone_after=0.2,
            )
            for n in "ab"
        )
        await a.start()
        await b.start()
        try:
            await _until(lambda: a.live_nodes == 2)
            await b.drain()  # a node that stops leaves the sharing at once
            await _until(lambda: a.live_nodes == 1)
        finally:
            await b.stop()
            await a.stop()


async def _until(condition: Callable[[], bool], within: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        assert loop.time() < deadline, f"not within {within} s"
        await asyncio.sleep(0.01)


def _delivery(offset: int, data: Any) -> Delivery:
    event = new_event("t", "test", data)
    return Delivery("in", "g", offset, event, 1, 0.0, 0.0)


# -- the manifest --------------------------------------------------------------------------


def test_flow_settings_go_from_the_manifest_to_the_subscription() -> None:
    trigger = TriggerConfig.model_validate(
        {
            "topic": "in",
            "concurrency": {"limit": 2, "key": "data.tenant"},
            "rate": {"limit": 100, "period": "500ms"},
            "debounce": {"period": "5s", "key": "subject"},
            "priority": "data.priority",
        }
    )
    record = TriggerRecord(id="f.in", function="f", topic="in",
                           config=trigger.model_dump(mode="json"))  # fmt: skip
    sub = trigger_subscription(record)
    assert sub is not None
    assert sub.flow is not None
    assert (sub.flow.concurrency, sub.flow.rate) == (
        ConcurrencyOptions(limit=2, key="data.tenant"),
        RateOptions(limit=100, period=0.5),
    )
    assert sub.flow.debounce == DebounceOptions(period=5.0, key="subject")
    assert sub.flow.priority == PriorityOptions(key="data.priority", default=0)
    plain = TriggerRecord(id="f.in", function="f", topic="in", config={"topic": "in"})
    assert trigger_subscription(plain) == Subscription(id="f.in", function="f", topic="in")


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ("concurrency: {limit: 0}", "triggers[0].concurrency.limit: expected an integer from 1"),
        ("concurrency: {key: data.t}", "triggers[0].concurrency.limit"),
        ("concurrency: {limit: 2, key: 'data..t'}", "triggers[0].concurrency.key: expected a key"),
        ("rate: {limit: 5, period: 0}", "triggers[0].rate.period: expected a period above zero"),
        ("rate: {limit: 5, period: soon}", "triggers[0].rate.period: expected a period above"),
        ("rate: {limit: 5, key: 'Data.x'}", "triggers[0].rate.key: expected a key path"),
        ("debounce: {period: -1s}", "triggers[0].debounce.period: expected a period above zero"),
        ("debounce: {period: 1s}, batch_size: 5", "debounce runs single events: remove the batc"),
        ("debounce: {period: 1s}, batch: {size: 5}", "debounce runs single events: remove the ba"),
        ("priority: 'data.p q'", "triggers[0].priority.key: expected a key path"),
        ("priority: {key: data.p, default: high}", "triggers[0].priority.default"),
    ],
)
def test_each_flow_mistake_names_its_key(tmp_path: Path, option: str, expected: str) -> None:
    assert expected in _manifest_error(tmp_path, f"topic: orders, {option}")


def test_an_http_trigger_refuses_flow_control(tmp_path: Path) -> None:
    message = _manifest_error(tmp_path, "http: {route: GET /x}, rate: {limit: 5}")
    assert "an http trigger answers each request at once: remove rate from it" in message


def _manifest_error(folder: Path, trigger: str) -> str:
    (folder / "resize").mkdir()
    (folder / "resize" / "main.py").write_text("")
    (folder / "triggerfish.yaml").write_text(
        f"functions:\n  resize:\n    handler: main.handler\n    triggers:\n      - {{{trigger}}}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_manifest(folder)
    return str(caught.value)
