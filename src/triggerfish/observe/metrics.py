"""Prometheus metrics of invocations and scaling, in a registry owned by ``Metrics``.

Two kinds of figure:

- counted as they happen: every recorded invocation (``observe``) moves the counters of
  invocations, errors, throttles, cold starts and billed GB-seconds, and the duration and
  init-duration histograms, labelled by function and version (and status where it
  applies);
- read when scraped: the environments of each function version (busy = concurrency,
  idle, warm = both) from the executor's pool statistics, and each trigger's backlog,
  leased and retrying events from the bus.

No global default registry is touched, so several nodes (or tests) in one process keep
separate figures. Label children are cached per function version and status, so
counting an invocation costs a dictionary lookup and a few additions.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from triggerfish.bus.base import GroupInfo
from triggerfish.store.records import InvocationRecord

FAILED = frozenset({"error", "timeout", "oom", "crashed"})
DURATION_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
)
INIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

PoolStatsSource = Callable[[], Iterable[Any]]
GroupsSource = Callable[[], Awaitable[Sequence[GroupInfo]]]


class Metrics:
    """The node's metrics; ``render()`` gives the Prometheus text exposition."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(
        self,
        *,
        pool_stats: PoolStatsSource | None = None,
        groups: GroupsSource | None = None,
        namespace: str = "triggerfish",
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._groups = groups
        ns = namespace
        fv = ("function", "version")
        fvs = ("function", "version", "status")
        r = self.registry
        self._invocations = Counter(
            f"{ns}_invocations", "Invocations recorded, by outcome.", fvs, registry=r
        )
        self._errors = Counter(
            f"{ns}_invocation_errors",
            "Invocations that failed: error, timeout, oom or crashed.",
            fvs,
            registry=r,
        )
        self._throttles = Counter(
            f"{ns}_throttles", "Requests refused at the concurrency limit.", fv, registry=r
        )
        self._cold_starts = Counter(
            f"{ns}_cold_starts", "Invocations that started a new environment.", fv, registry=r
        )
        self._gb_seconds = Counter(
            f"{ns}_billed_gb_seconds",
            "Memory size times billed duration, in GB-seconds.",
            fv,
            registry=r,
        )
        self._duration = Histogram(
            f"{ns}_invocation_duration_seconds",
            "Handler duration of invocations that ran.",
            fvs,
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self._init = Histogram(
            f"{ns}_init_duration_seconds",
            "Init duration (module import) of cold starts.",
            fv,
            buckets=INIT_BUCKETS,
            registry=r,
        )
        self._scale = _ScaleCollector(ns, pool_stats)
        r.register(self._scale)
        self._children: dict[tuple[str, str, str], _Children] = {}

    def observe(self, record: InvocationRecord) -> None:
        """Count one recorded invocation."""
        key = (record.function, record.version, record.status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = self._make_children(*key)
        children.invocations.inc()
        if record.status == "throttled":
            children.throttles.inc()
            return
        if children.errors is not None:
            children.errors.inc()
        children.duration.observe(record.duration_ms / 1000)
        if record.billed_duration_ms:
            children.gb_seconds.inc(record.memory_size_mb * record.billed_duration_ms / 1024e3)
        if record.init_duration_ms is not None:
            children.cold_starts.inc()
            children.init.observe(record.init_duration_ms / 1000)

    async def render(self) -> bytes:
        """The text exposition, with the scaling figures read now."""
        groups: Sequence[GroupInfo] = ()
        if self._groups is not None:
            groups = await self._groups()
        self._scale.groups = groups
        try:
            return generate_latest(self.registry)
        finally:
            self._scale.groups = ()

    def _make_children(self, function: str, version: str, status: str) -> _Children:
        return _Children(
            invocations=self._invocations.labels(function, version, status),
            errors=self._errors.labels(function, version, status) if status in FAILED else None,
            throttles=self._throttles.labels(function, version),
            cold_starts=self._cold_starts.labels(function, version),
            gb_seconds=self._gb_seconds.labels(function, version),
            duration=self._duration.labels(function, version, status),
            init=self._init.labels(function, version),
        )


class _Children:
    __slots__ = (
        "cold_starts",
        "duration",
        "errors",
        "gb_seconds",
        "init",
        "invocations",
        "throttles",
    )

    def __init__(
        self,
        *,
        invocations: Counter,
        errors: Counter | None,
        throttles: Counter,
        cold_starts: Counter,
        gb_seconds: Counter,
        duration: Histogram,
        init: Histogram,
    ) -> None:
        self.invocations = invocations
        self.errors = errors
        self.throttles = throttles
        self.cold_starts = cold_starts
        self.gb_seconds = gb_seconds
        self.duration = duration
        self.init = init


class _ScaleCollector(Collector):
    """Gauges read at scrape time: environments per function version, trigger backlogs."""

    def __init__(self, namespace: str, pool_stats: PoolStatsSource | None) -> None:
        self._ns = namespace
        self._pool_stats = pool_stats
        self.groups: Sequence[GroupInfo] = ()

    def describe(self) -> Iterable[Metric]:
        return list(self._families())

    def collect(self) -> Iterable[Metric]:
        families = self._families()
        busy, idle, warm, starting, waiting, reserved = families[:6]
        for stats in self._pool_stats() if self._pool_stats is not None else ():
            labels = [str(stats.function), str(stats.version)]
            running = int(getattr(stats, "busy", 0))
            resting = int(getattr(stats, "idle", 0))
            busy.add_metric(labels, running)
            idle.add_metric(labels, resting)
            warm.add_metric(labels, running + resting)
            starting.add_metric(labels, int(getattr(stats, "starting", 0)))
            waiting.add_metric(labels, int(getattr(stats, "waiting", 0)))
            reserved.add_metric(labels, int(getattr(stats, "reserved_mb", 0)) * 1024 * 1024)
        backlog, in_flight, retrying = families[6:]
        for group in self.groups:
            labels = [group.topic, group.group]
            backlog.add_metric(labels, group.backlog)
            in_flight.add_metric(labels, group.in_flight)
            retrying.add_metric(labels, group.waiting_retry)
        return families

    def _families(self) -> list[GaugeMetricFamily]:
        ns = self._ns
        fv = ["function", "version"]
        tg = ["topic", "trigger"]
        return [
            GaugeMetricFamily(f"{ns}_concurrent_executions", "Invocations running now.", labels=fv),
            GaugeMetricFamily(
                f"{ns}_idle_environments", "Environments warm and waiting for work.", labels=fv
            ),
            GaugeMetricFamily(
                f"{ns}_warm_environments", "Environments alive (busy or idle).", labels=fv
            ),
            GaugeMetricFamily(
                f"{ns}_starting_environments", "Environments being started.", labels=fv
            ),
            GaugeMetricFamily(
                f"{ns}_waiting_invocations",
                "Invocations waiting for a free environment.",
                labels=fv,
            ),
            GaugeMetricFamily(
                f"{ns}_reserved_memory_bytes",
                "Memory budget held by the environments.",
                labels=fv,
            ),
            GaugeMetricFamily(
                f"{ns}_trigger_backlog", "Events not yet handed to the trigger.", labels=tg
            ),
            GaugeMetricFamily(
                f"{ns}_trigger_in_flight", "Events leased to the trigger, not acked.", labels=tg
            ),
            GaugeMetricFamily(
                f"{ns}_trigger_waiting_retry", "Events waiting for a retry.", labels=tg
            ),
        ]
