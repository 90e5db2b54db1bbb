"""Prometheus metrics: counters move with recorded invocations, scaling gauges are read
at scrape time, and each ``Metrics`` keeps its own registry."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    enable_created_metrics,
    generate_latest,
)
from prometheus_client.parser import text_string_to_metric_families

from triggerfish.bus.memory import MemoryBus
from triggerfish.events import new_event
from triggerfish.observe.metrics import DURATION_BUCKETS, FAILED, INIT_BUCKETS, Metrics
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


class LibraryMetrics:
    """The invocation figures as ``prometheus_client``'s own counters and histograms
    count them: what /metrics has always shown, to compare the exposition with."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        fv, fvs, r = ("function", "version"), ("function", "version", "status"), self.registry
        self.invocations = Counter(
            "triggerfish_invocations", "Invocations recorded, by outcome.", fvs, registry=r
        )
        self.errors = Counter(
            "triggerfish_invocation_errors",
            "Invocations that failed: error, timeout, oom or crashed.",
            fvs,
            registry=r,
        )
        self.throttles = Counter(
            "triggerfish_throttles", "Requests refused at the concurrency limit.", fv, registry=r
        )
        self.cold_starts = Counter(
            "triggerfish_cold_starts",
            "Invocations that started a new environment.",
            fv,
            registry=r,
        )
        self.gb_seconds = Counter(
            "triggerfish_billed_gb_seconds",
            "Memory size times billed duration, in GB-seconds.",
            fv,
            registry=r,
        )
        self.duration = Histogram(
            "triggerfish_invocation_duration_seconds",
            "Handler duration of invocations that ran.",
            fvs,
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.init = Histogram(
            "triggerfish_init_duration_seconds",
            "Init duration (module import) of cold starts.",
            fv,
            buckets=INIT_BUCKETS,
            registry=r,
        )

    def observe(self, record: InvocationRecord) -> None:
        fv = (record.function, record.version)
        fvs = (*fv, record.status)
        # Every series of a function version (and status) shows from its first invocation.
        self.invocations.labels(*fvs).inc()
        if record.status in FAILED:
            self.errors.labels(*fvs)
        for counter in (self.throttles, self.cold_starts, self.gb_seconds):
            counter.labels(*fv)
        self.duration.labels(*fvs)
        self.init.labels(*fv)
        if record.status == "throttled":
            self.throttles.labels(*fv).inc()
            return
        if record.status in FAILED:
            self.errors.labels(*fvs).inc()
        self.duration.labels(*fvs).observe(record.duration_ms / 1000)
        if record.billed_duration_ms:
            self.gb_seconds.labels(*fv).inc(
                record.memory_size_mb * record.billed_duration_ms / 1024e3
            )
        if record.init_duration_ms is not None:
            self.cold_starts.labels(*fv).inc()
            self.init.labels(*fv).observe(record.init_duration_ms / 1000)


def varied_records(count: int) -> list[InvocationRecord]:
    """Invocations of every outcome, of three function versions (one with a name that
    must be escaped), with durations on bucket bounds, between them and beyond the last."""
    durations = [0.0, 0.5, 1.0, 12.5, 250.0, 2_500.0, 1e6, 0.73, 61_000.0, 900_000.0]
    inits = [None, None, None, 0.0, 1.0, 2.5, 85.5, 10_000.0, 20_000.0]
    statuses: list[Status] = ["ok", "ok", "ok", "error", "timeout", "oom", "crashed", "throttled"]
    made = []
    for n in range(count):
        status = statuses[n % len(statuses)]
        init = inits[n % len(inits)]
        made.append(
            InvocationRecord(
                id=new_id(),
                function=("resize", "notify", 'say "hi"\\\n')[n % 3],
                version=("v1", "v2")[n % 2],
                status=status,
                started_at=1.0,
                duration_ms=0.0 if status == "throttled" else durations[n % len(durations)],
                billed_duration_ms=0 if status == "throttled" else (0, 1, 13, 700)[n % 4],
                memory_size_mb=(128, 256, 1769)[n % 3],
                init_duration_ms=init,
                cold_start=init is not None,
            )
        )
    return made


# The library's switches of its ``_created`` series, typed (the library's are not).
disable_created: Callable[[], None] = disable_created_metrics
enable_created: Callable[[], None] = enable_created_metrics


def without_created_times(text: str) -> str:
    """The exposition with each ``_created`` sample's time (when the series began) blanked."""
    return re.sub(r"^(\S+_created\{.*\}) \S+$", r"\1 T", text, flags=re.MULTILINE)


@pytest.mark.parametrize("created", [True, False], ids=["created", "no-created"])
async def test_the_exposition_is_the_one_of_the_librarys_counters(created: bool) -> None:
    metrics, reference = Metrics(), LibraryMetrics()
    if not created:
        disable_created()
    try:
        for n, item in enumerate(varied_records(500)):
            metrics.observe(item)
            reference.observe(item)
            if n in (0, 7, 499):
                # The scaling gauges (none here) follow the invocation figures.
                ours, _ = (
                    (await metrics.render())
                    .decode()
                    .split("# HELP triggerfish_concurrent_executions")
                )
                theirs = generate_latest(reference.registry).decode()
                assert without_created_times(ours) == without_created_times(theirs)
                assert ("_created{" in ours) is created
    finally:
        enable_created()


async def test_the_exposition_of_known_invocations() -> None:
    metrics = Metrics()
    began = time.time()
    for item in (
        record(duration_ms=0.5, init_ms=3.0),  # on the first bound: counted in it
        record(duration_ms=0.50001),
        record(duration_ms=2_000_000.0),  # beyond 900 s: in +Inf only
        record(status="throttled"),
    ):
        metrics.observe(item)
    ended = time.time()

    text = (await metrics.render()).decode()
    value = dict(line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))

    ok = 'function="resize",status="ok",version="v1"'
    throttled = 'function="resize",status="throttled",version="v1"'
    fv = 'function="resize",version="v1"'
    duration = "triggerfish_invocation_duration_seconds"
    assert value[
        f'{duration}_bucket{{function="resize",le="0.0005",status="ok",version="v1"}}'
    ] == ("1.0")
    assert value[f'{duration}_bucket{{function="resize",le="0.001",status="ok",version="v1"}}'] == (
        "2.0"
    )
    assert value[f'{duration}_bucket{{function="resize",le="900.0",status="ok",version="v1"}}'] == (
        "2.0"
    )
    assert value[f'{duration}_bucket{{function="resize",le="+Inf",status="ok",version="v1"}}'] == (
        "3.0"
    )
    assert value[f"{duration}_count{{{ok}}}"] == "3.0"
    assert value[f"{duration}_sum{{{ok}}}"] == repr(0.0005 + 0.00050001 + 2000.0)
    assert value[f"{duration}_count{{{throttled}}}"] == "0.0"  # a series at zero
    assert value[f"triggerfish_invocations_total{{{ok}}}"] == "3.0"
    assert value[f"triggerfish_invocations_total{{{throttled}}}"] == "1.0"
    assert value[f"triggerfish_throttles_total{{{fv}}}"] == "1.0"
    assert value[f"triggerfish_cold_starts_total{{{fv}}}"] == "1.0"
    init = "triggerfish_init_duration_seconds"
    assert value[f'{init}_bucket{{function="resize",le="0.0025",version="v1"}}'] == "0.0"
    assert value[f'{init}_bucket{{function="resize",le="0.005",version="v1"}}'] == "1.0"
    assert value[f"{init}_sum{{{fv}}}"] == "0.003"
    each = 256 * 13 / 1024e3
    assert value[f"triggerfish_billed_gb_seconds_total{{{fv}}}"] == repr(each + each + each)
    assert f"triggerfish_invocation_errors_total{{{ok}}}" not in value
    assert began <= float(value[f"triggerfish_invocations_created{{{ok}}}"]) <= ended
    assert "# TYPE triggerfish_invocations_total counter" in text
    assert "# TYPE triggerfish_invocation_duration_seconds histogram" in text
