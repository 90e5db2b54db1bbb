"""Prometheus metrics of invocations and scaling, in a registry owned by ``Metrics``.

Two kinds of figure:

- counted as they happen: every recorded invocation (``observe``) moves the counters of
  invocations, errors, throttles, cold starts and billed GB-seconds, and the duration and
  init-duration histograms, labelled by function and version (and status where it
  applies);
- read when scraped: the environments of each function version (busy = concurrency,
  idle, warm = both) from the executor's pool statistics, each trigger's backlog,
  leased and retrying events from the bus, and the counters of each running broker
  source (``SourceManager.stats``: connected, connections, reconnects, messages
  received, published and dropped), which the source keeps itself, and the counters of
  each named broker's sink relay (``Sinks.stats``: connected, published, failures,
  reconnects, rejected, pending).

No global default registry is touched, so several nodes (or tests) in one process keep
separate figures.

The invocation figures are plain numbers kept per function version and status, not
``prometheus_client`` counters and histograms, whose every change takes a lock: counting
an invocation costs a dictionary lookup and a few additions. Every ``observe`` comes
from the event loop's thread (``Recorder.record``), and so does every scrape
(``render``), so the numbers need no lock. ``_InvocationCollector`` turns them into the
samples those counters and histograms would give, series for series in the same order:
``_total``, ``_bucket``, ``_count``, ``_sum`` and ``_created`` (unless
``PROMETHEUS_DISABLE_CREATED_SERIES`` turns the library's off), and a series shows from
the first invocation of its function version (and status), at zero where nothing moved.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client import metrics as prometheus_metrics
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

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
# The upper bounds of the buckets, with the +Inf bucket every histogram ends with.
_DURATION_BOUNDS = (*DURATION_BUCKETS, float("inf"))
_INIT_BOUNDS = (*INIT_BUCKETS, float("inf"))
# The library's text of a bucket's bound (``le``), typed: the library's is not.
_le_text: Callable[[float], str] = floatToGoString

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
        r = self.registry
        invocations = _InvocationCollector(ns)
        r.register(invocations)
        self._series = invocations.series
        self._versions = invocations.versions
        self._scale = _ScaleCollector(ns, pool_stats)
        r.register(self._scale)
        self._sources = _SourceCollector(ns)
        r.register(self._sources)
        self._sinks = _SinkCollector(ns)
        r.register(self._sinks)

    def observe(self, record: InvocationRecord) -> None:
        """Count one recorded invocation."""
        status = record.status
        series = self._series.get((record.function, record.version, status))
        if series is None:
            series = self._add_series(record.function, record.version, status)
        series.invocations += 1
        if status == "throttled":
            series.version.throttles += 1
            return
        if series.failed:
            series.errors += 1
        seconds = record.duration_ms / 1000
        series.duration_sum += seconds
        index = bisect_left(_DURATION_BOUNDS, seconds)
        if seconds <= _DURATION_BOUNDS[index]:  # false for NaN only, which fits no bucket
            series.duration_buckets[index] += 1
        if record.billed_duration_ms:
            series.version.gb_seconds += record.memory_size_mb * record.billed_duration_ms / 1024e3
        if record.init_duration_ms is not None:
            version = series.version
            version.cold_starts += 1
            seconds = record.init_duration_ms / 1000
            version.init_sum += seconds
            index = bisect_left(_INIT_BOUNDS, seconds)
            if seconds <= _INIT_BOUNDS[index]:
                version.init_buckets[index] += 1

    async def render(
        self, *, sources: Iterable[Mapping[str, Any]] = (), sinks: Iterable[Any] = ()
    ) -> bytes:
        """The text exposition, with the scaling figures read now; ``sources``: the
        counters of the running sources (``SourceManager.stats()``); ``sinks``: those of
        the named brokers' relays (``Sinks.stats()``, objects with ``SinkStats``'s
        attributes)."""
        groups: Sequence[GroupInfo] = ()
        if self._groups is not None:
            groups = await self._groups()
        self._scale.groups = groups
        self._sources.stats = list(sources)
        self._sinks.stats = list(sinks)
        try:
            return generate_latest(self.registry)
        finally:
            self._scale.groups = ()
            self._sources.stats = []
            self._sinks.stats = []

    def _add_series(self, function: str, version: str, status: str) -> _Series:
        of_version = self._versions.get((function, version))
        if of_version is None:
            of_version = self._versions[function, version] = _VersionSeries()
        series = self._series[function, version, status] = _Series(of_version, status in FAILED)
        return series


class _VersionSeries:
    """The figures of one function version."""

    __slots__ = ("cold_starts", "created", "gb_seconds", "init_buckets", "init_sum", "throttles")

    def __init__(self) -> None:
        self.created = time.time()
        self.throttles = 0
        self.cold_starts = 0
        self.gb_seconds = 0.0
        self.init_buckets = [0] * len(_INIT_BOUNDS)  # not cumulative
        self.init_sum = 0.0


class _Series:
    """The figures of one function version and status."""

    __slots__ = (
        "created",
        "duration_buckets",
        "duration_sum",
        "errors",
        "failed",
        "invocations",
        "version",
    )

    def __init__(self, version: _VersionSeries, failed: bool) -> None:
        self.created = time.time()
        self.version = version
        self.failed = failed  # counted as an error too
        self.invocations = 0
        self.errors = 0
        self.duration_buckets = [0] * len(_DURATION_BOUNDS)  # not cumulative
        self.duration_sum = 0.0


class _InvocationCollector(Collector):
    """The invocation counters and histograms, read from ``series`` (by function,
    version and status) and ``versions`` (by function and version) when scraped."""

    def __init__(self, namespace: str) -> None:
        self._ns = namespace
        self.series: dict[tuple[str, str, str], _Series] = {}
        self.versions: dict[tuple[str, str], _VersionSeries] = {}
        self._duration_le = [_le_text(bound) for bound in _DURATION_BOUNDS]
        self._init_le = [_le_text(bound) for bound in _INIT_BOUNDS]

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        # Read when scraped, as the library reads it: ``disable_created_metrics()``
        # may have turned the ``_created`` series off since.
        created = prometheus_metrics._use_created
        families = self._families()
        invocations, errors, throttles, cold_starts, gb_seconds, duration, init = families
        for (function, version, status), series in self.series.items():
            labels = {"function": function, "version": version, "status": status}
            at = series.created if created else None
            _counter(invocations, labels, series.invocations, at)
            if series.failed:
                _counter(errors, labels, series.errors, at)
            _histogram(
                duration,
                labels,
                self._duration_le,
                series.duration_buckets,
                series.duration_sum,
                at,
            )
        for (function, version), figures in self.versions.items():
            labels = {"function": function, "version": version}
            at = figures.created if created else None
            _counter(throttles, labels, figures.throttles, at)
            _counter(cold_starts, labels, figures.cold_starts, at)
            _counter(gb_seconds, labels, figures.gb_seconds, at)
            _histogram(init, labels, self._init_le, figures.init_buckets, figures.init_sum, at)
        return families

    def _families(self) -> list[Metric]:
        ns = self._ns
        return [
            Metric(f"{ns}_invocations", "Invocations recorded, by outcome.", "counter"),
            Metric(
                f"{ns}_invocation_errors",
                "Invocations that failed: error, timeout, oom or crashed.",
                "counter",
            ),
            Metric(f"{ns}_throttles", "Requests refused at the concurrency limit.", "counter"),
            Metric(f"{ns}_cold_starts", "Invocations that started a new environment.", "counter"),
            Metric(
                f"{ns}_billed_gb_seconds",
                "Memory size times billed duration, in GB-seconds.",
                "counter",
            ),
            Metric(
                f"{ns}_invocation_duration_seconds",
                "Handler duration of invocations that ran.",
                "histogram",
            ),
            Metric(
                f"{ns}_init_duration_seconds",
                "Init duration (module import) of cold starts.",
                "histogram",
            ),
        ]


def _counter(family: Metric, labels: dict[str, str], value: float, created: float | None) -> None:
    """The samples of one series of a ``prometheus_client`` counter."""
    name = family.name
    family.samples.append(Sample(f"{name}_total", dict(labels), float(value), None, None))
    if created is not None:
        family.samples.append(Sample(f"{name}_created", dict(labels), created, None, None))


def _histogram(
    family: Metric,
    labels: dict[str, str],
    le: list[str],
    buckets: list[int],
    total: float,
    created: float | None,
) -> None:
    """The samples of one series of a ``prometheus_client`` histogram: cumulative
    buckets, the count, the sum."""
    name = family.name
    samples = family.samples
    count = 0.0
    for bound, in_bucket in zip(le, buckets, strict=True):
        count += in_bucket
        samples.append(Sample(f"{name}_bucket", {**labels, "le": bound}, count, None, None))
    samples.append(Sample(f"{name}_count", dict(labels), count, None, None))
    samples.append(Sample(f"{name}_sum", dict(labels), total, None, None))
    if created is not None:
        samples.append(Sample(f"{name}_created", dict(labels), created, None, None))


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


class _SourceCollector(Collector):
    """The counters of running sources, labelled by kind, trigger and url (redacted).

    The counts live in each source and start at zero when it starts (a redeploy that
    changes the trigger restarts its source): Prometheus reads that as a counter reset.
    """

    def __init__(self, namespace: str) -> None:
        self._ns = namespace
        self.stats: list[Mapping[str, Any]] = []

    def describe(self) -> Iterable[Metric]:
        return self.collect()

    def collect(self) -> Iterable[Metric]:
        ns = self._ns
        ktu = ["kind", "trigger", "url"]
        connected = GaugeMetricFamily(
            f"{ns}_source_connected",
            "1 while the source is connected to its broker, else 0.",
            labels=ktu,
        )
        connections = CounterMetricFamily(
            f"{ns}_source_connections", "Connections to the broker that succeeded.", labels=ktu
        )
        reconnects = CounterMetricFamily(
            f"{ns}_source_reconnects",
            "Failures (cannot connect, connection lost) followed by a wait and a new attempt.",
            labels=ktu,
        )
        messages = CounterMetricFamily(
            f"{ns}_source_messages",
            "Broker messages received, published to the bus as events, or dropped "
            "(they cannot become events).",
            labels=[*ktu, "outcome"],
        )
        last = GaugeMetricFamily(
            f"{ns}_source_last_message_timestamp_seconds",
            "Unix time of the last batch of messages taken from the broker.",
            labels=ktu,
        )
        for stats in self.stats:
            labels = [str(stats["kind"]), str(stats["trigger"]), str(stats["url"])]
            connected.add_metric(labels, 1 if stats["connected"] else 0)
            connections.add_metric(labels, int(stats["connections"]))
            reconnects.add_metric(labels, int(stats["reconnects"]))
            for outcome in ("received", "published", "dropped"):
                messages.add_metric([*labels, outcome], int(stats[outcome]))
            if stats.get("last_message_at"):
                last.add_metric(labels, float(stats["last_message_at"]))
        return [connected, connections, reconnects, messages, last]


class _SinkCollector(Collector):
    """The counters of each named broker's sink relay, labelled by kind, broker and url
    (redacted). Like the sources', they start at zero when the relay starts (a deploy
    that changes the broker's definition restarts it)."""

    def __init__(self, namespace: str) -> None:
        self._ns = namespace
        self.stats: list[Any] = []

    def describe(self) -> Iterable[Metric]:
        return self.collect()

    def collect(self) -> Iterable[Metric]:
        ns = self._ns
        kbu = ["kind", "broker", "url"]
        connected = GaugeMetricFamily(
            f"{ns}_sink_connected",
            "1 while the sink holds a connection to its broker, else 0.",
            labels=kbu,
        )
        published = CounterMetricFamily(
            f"{ns}_sink_published", "Events the broker confirmed.", labels=kbu
        )
        failures = CounterMetricFamily(
            f"{ns}_sink_failures",
            "Events whose send failed (cannot connect, connection lost, refused for now), "
            "counted at each try; each is sent again later.",
            labels=kbu,
        )
        reconnects = CounterMetricFamily(
            f"{ns}_sink_reconnects",
            "Connections made after a previous one was lost.",
            labels=kbu,
        )
        rejected = CounterMetricFamily(
            f"{ns}_sink_rejected",
            "Events the broker can never take, moved to _sink.<broker>.dlq.",
            labels=kbu,
        )
        pending = GaugeMetricFamily(
            f"{ns}_sink_pending",
            "Events waiting on _sink.<broker> to be sent, as of the relay's last look.",
            labels=kbu,
        )
        last = GaugeMetricFamily(
            f"{ns}_sink_last_published_timestamp_seconds",
            "Unix time of the last event the broker confirmed.",
            labels=kbu,
        )
        for stats in self.stats:
            labels = [str(stats.kind), str(stats.broker), str(stats.url)]
            connected.add_metric(labels, 1 if stats.connected else 0)
            published.add_metric(labels, int(stats.published))
            failures.add_metric(labels, int(stats.failures))
            reconnects.add_metric(labels, int(stats.reconnects))
            rejected.add_metric(labels, int(stats.rejected))
            pending.add_metric(labels, int(stats.pending))
            if stats.last_published_at:
                last.add_metric(labels, float(stats.last_published_at))
        return [connected, published, failures, reconnects, rejected, pending, last]
