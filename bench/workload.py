"""The three core workloads, defined once so every system runs exactly the same one.

``Plan`` holds the sizes (full or ``--quick``); ``make_payload`` builds the ~200-byte JSON
document each event or call carries; ``paced`` yields send times on a steady schedule;
``Result`` is what one system reports for one workload.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

PAYLOAD_BYTES = 200
WARMUP_EVENTS = 50

Workload = Literal["throughput", "latency", "sync"]
WORKLOADS: tuple[Workload, ...] = ("throughput", "latency", "sync")


@dataclass(frozen=True, slots=True)
class Plan:
    throughput_events: int = 20_000
    latency_rate: float = 200.0  # events per second
    latency_events: int = 2_000
    sync_clients: int = 32
    sync_seconds: float = 10.0

    @classmethod
    def quick(cls) -> Plan:
        return cls(throughput_events=2_000, latency_events=400, sync_seconds=2.0)

    def drain_timeout(self) -> float:
        """How long to wait for a backlog of ``throughput_events`` to be handled."""
        return 60.0 + self.throughput_events / 100


@dataclass(slots=True)
class Result:
    """One system's outcome for one workload: figures, or why there are none."""

    status: Literal["ok", "error", "n/a"]
    figures: dict[str, float] = field(default_factory=dict)
    reason: str = ""

    @classmethod
    def ok(cls, **figures: float) -> Result:
        return cls("ok", figures)

    @classmethod
    def failed(cls, reason: str) -> Result:
        return cls("error", reason=reason)

    @classmethod
    def not_applicable(cls, reason: str) -> Result:
        return cls("n/a", reason=reason)

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "figures": self.figures, "reason": self.reason}


def make_payload(i: int) -> dict[str, Any]:
    """A JSON object of exactly ``PAYLOAD_BYTES`` bytes when compactly serialised."""
    body: dict[str, Any] = {
        "order": i,
        "customer": f"c-{i % 9973:05d}",
        "items": [{"sku": "sku-0042", "qty": 2, "price": 12.5}],
        "currency": "EUR",
        "note": "",
    }
    size = len(json.dumps(body, separators=(",", ":")))
    body["note"] = "x" * max(0, PAYLOAD_BYTES - size)
    return body


def paced(rate: float, count: int) -> Iterator[int]:
    """Yield 0..count-1, each at its slot of a fixed schedule (``rate`` per second).

    The schedule is absolute, so a slow send is caught up on rather than shifting every
    later one; the caller takes its publish timestamp right after each yield.
    """
    start = time.perf_counter()
    for i in range(count):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        yield i


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by linear interpolation between closest ranks."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_figures(seconds: list[float]) -> dict[str, float]:
    """p50/p99/mean/max in milliseconds and the sample count."""
    ms = [s * 1000 for s in seconds]
    return {
        "p50_ms": percentile(ms, 50),
        "p99_ms": percentile(ms, 99),
        "mean_ms": sum(ms) / len(ms),
        "max_ms": max(ms),
        "samples": float(len(ms)),
    }
