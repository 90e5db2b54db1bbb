"""Prometheus metrics: counters move with recorded invocations, scaling gauges are read
at scrape time, and each ``Metrics`` keeps its own registry."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from triggerfish.bus.memory import MemoryBus
from triggerfish.events import new_event
from triggerfish.observe.metrics import Metrics
from triggerfish.observe.recorder import Recorder
from triggerfish.runtime.base import FunctionSpec, InvocationResult, Status
from triggerfish.store import InvocationRecord, SqlStore, new_id


@dataclass(frozen=True)
class PoolStats:
    """The shape the executor reports per function version."""

    function: str
    version: str
    busy: int
    idle: int
    starting: int = 0
    waiting: int = 0
    reserved_mb: int = 0


def record(
    function: str = "resize",
    status: Status = "ok",
    *,
    duration_ms: float = 12.5,
    memory: int = 256,
    init_ms: float | None = None,
) -> InvocationRecord:
    return InvocationRecord(
        id=new_id(),
        function=function,
        version="v1",
        status=status,
        started_at=1.0,
        duration_ms=duration_ms,
        billed_duration_ms=0 if status == "throttled" else 13,
        memory_size_mb=memory,
        init_duration_ms=init_ms,
        cold_start=init_ms is not None,
    )


async def scrape(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = (await metrics.render()).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def fv(function: str = "resize", **more: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({"function": function, "version": "v1", **more}.items()))


async def test_counters_follow_each_observed_invocation() -> None:
    metrics = Metrics()
    for item in (
        record(init_ms=40.0),
        record(),
        record(status="error"),
        record(status="timeout"),
        record(status="throttled"),
    ):
        metrics.observe(item)

    samples = await scrape(metrics)

    assert samples[("triggerfish_invocations_total", fv(status="ok"))] == 2
    assert samples[("triggerfish_invocations_total", fv(status="error"))] == 1
    assert samples[("triggerfish_invocation_errors_total", fv(status="error"))] == 1
    assert samples[("triggerfish_invocation_errors_total", fv(status="timeout"))] == 1
    assert ("triggerfish_invocation_errors_total", fv(status="ok")) not in samples
    assert samples[("triggerfish_throttles_total", fv())] == 1
    assert samples[("triggerfish_cold_starts_total", fv())] == 1
    assert samples[("triggerfish_init_duration_seconds_count", fv())] == 1
    assert samples[("triggerfish_init_duration_seconds_sum", fv())] == pytest.approx(0.04)
    assert samples[("triggerfish_invocation_duration_seconds_count", fv(status="ok"))] == 2
    assert (
        samples[("triggerfish_invocation_duration_seconds_bucket", fv(status="ok", le="0.025"))]
        == 2
    )
    # 4 invocations that ran, 256 MB for 13 ms each
    assert samples[("triggerfish_billed_gb_seconds_total", fv())] == pytest.approx(
        4 * 256 / 1024 * 13 / 1000
    )


async def test_environment_gauges_are_read_when_scraped() -> None:
    pools = [PoolStats("resize", "v1", busy=3, idle=2, starting=1, waiting=4, reserved_mb=768)]
    metrics = Metrics(pool_stats=lambda: pools)

    first = await scrape(metrics)
    pools[0] = PoolStats("resize", "v1", busy=0, idle=1)
    second = await scrape(metrics)

    assert first[("triggerfish_concurrent_executions", fv())] == 3
    assert first[("triggerfish_warm_environments", fv())] == 5
    assert first[("triggerfish_starting_environments", fv())] == 1
    assert first[("triggerfish_waiting_invocations", fv())] == 4
    assert first[("triggerfish_reserved_memory_bytes", fv())] == 768 * 1024 * 1024
    assert second[("triggerfish_concurrent_executions", fv())] == 0
    assert second[("triggerfish_warm_environments", fv())] == 1
    assert second[("triggerfish_idle_environments", fv())] == 1


async def test_trigger_backlog_comes_from_the_bus() -> None:
    async with MemoryBus() as bus:
        await bus.create_topic("orders")
        await bus.subscribe("orders", "ship.on-order", start="earliest")
        await bus.publish("orders", [new_event("order.placed", "shop", {"n": n}) for n in range(3)])
        await bus.fetch("orders", "ship.on-order", max_count=1, lease=30.0)
        metrics = Metrics(groups=bus.groups)

        samples = await scrape(metrics)

    labels = (("topic", "orders"), ("trigger", "ship.on-order"))
    assert samples[("triggerfish_trigger_backlog", labels)] == 2
    assert samples[("triggerfish_trigger_in_flight", labels)] == 1


async def test_two_nodes_in_one_process_keep_separate_figures() -> None:
    one, two = Metrics(), Metrics()
    one.observe(record())

    assert (await scrape(one))[("triggerfish_invocations_total", fv(status="ok"))] == 1
    assert ("triggerfish_invocations_total", fv(status="ok")) not in await scrape(two)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    async with SqlStore(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}") as opened:
        yield opened


async def test_recorder_feeds_metrics_with_every_record(store: SqlStore, tmp_path: Path) -> None:
    metrics = Metrics()
    recorder = Recorder(store, metrics=metrics)
    spec = FunctionSpec(function="resize", version="v1", code_dir=tmp_path, handler="m.h")
    result = InvocationResult(
        request_id=new_id(),
        status="ok",
        duration_ms=2.0,
        billed_duration_ms=2,
        init_duration_ms=9.0,
    )

    recorder.record(spec, result, trigger=None, event_ids=(), attempt=1, request_bytes=2)
    await recorder.flush()

    samples = await scrape(metrics)
    assert samples[("triggerfish_invocations_total", fv(status="ok"))] == 1
    assert samples[("triggerfish_cold_starts_total", fv())] == 1
    assert len(await store.list_invocations(function="resize")) == 1
