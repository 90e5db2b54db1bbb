"""Metering and costs: what the invocations of a period would cost at given unit prices.

Each invocation is billed as a request and for its compute: its memory size times its
billed duration (the duration rounded up to the next whole millisecond), in GB-seconds
(``memory_size_mb / 1024 * billed_duration_ms / 1000``). Throttled requests ran nothing
and cost nothing; init duration is reported but not billed. An idle function has no
records, so it costs nothing. Default prices are AWS Lambda's published x86 prices
(settings ``price_per_request`` and ``price_per_gb_second``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from triggerfish.store.records import InvocationRecord
from triggerfish.store.sql import SqlStore
from triggerfish.store.usage import (
    Usage,
    merged,
    summed,
    usage_by_function,
    usage_by_period,
    usage_by_version,
)

DEFAULT_PRICE_PER_REQUEST = 0.20 / 1_000_000  # USD
DEFAULT_PRICE_PER_GB_SECOND = 0.0000166667  # USD


def gb_seconds(memory_size_mb: int, billed_duration_ms: int) -> float:
    """The compute of one invocation in GB-seconds."""
    return memory_size_mb / 1024 * billed_duration_ms / 1000


def record_gb_seconds(record: InvocationRecord) -> float:
    return gb_seconds(record.memory_size_mb, record.billed_duration_ms)


@dataclass(frozen=True, slots=True)
class Prices:
    per_request: float = DEFAULT_PRICE_PER_REQUEST
    per_gb_second: float = DEFAULT_PRICE_PER_GB_SECOND
    currency: str = "USD"


@dataclass(frozen=True, slots=True)
class FunctionCost:
    function: str
    requests: int
    errors: int
    throttled: int
    cold_starts: int
    duration_ms: float
    billed_duration_ms: int
    init_duration_ms: float
    gb_seconds: float
    request_cost: float
    compute_cost: float
    cost: float


@dataclass(frozen=True, slots=True)
class CostReport:
    since: float | None
    until: float | None
    prices: Prices
    usage: list[Usage] = field(default_factory=list)
    periods: list[CostReport] | None = None  # the span cut in equal periods, when asked
    # Each function's usage cut by the version that ran, when asked: a weighted alias
    # runs two versions, and each is priced apart.
    versions: list[tuple[str, Usage]] | None = None

    @property
    def functions(self) -> list[FunctionCost]:
        return [_priced(row, self.prices) for row in self.usage]

    @property
    def total(self) -> FunctionCost:
        return _priced(summed("*", self.usage), self.prices)

    def to_json(self) -> dict[str, Any]:
        return {
            "since": self.since,
            "until": self.until,
            "currency": self.prices.currency,
            "prices": {
                "per_request": self.prices.per_request,
                "per_gb_second": self.prices.per_gb_second,
            },
            "functions": [asdict(item) for item in self.functions],
            "total": asdict(self.total),
            **(
                {"periods": [_period_json(period) for period in self.periods]}
                if self.periods is not None
                else {}
            ),
            **(
                {
                    "versions": [
                        {"version": version, **asdict(_priced(usage, self.prices))}
                        for version, usage in self.versions
                    ]
                }
                if self.versions is not None
                else {}
            ),
        }


def _period_json(report: CostReport) -> dict[str, Any]:
    return {
        "since": report.since,
        "until": report.until,
        "functions": [asdict(item) for item in report.functions],
        "total": asdict(report.total),
    }


class CostMeter:
    """Prices the usage that the store's invocation records add up to."""

    def __init__(self, store: SqlStore, *, prices: Prices | None = None) -> None:
        self._store = store
        self.prices = prices or Prices()

    async def report(
        self,
        *,
        function: str | None = None,
        since: float | None = None,
        until: float | None = None,
        periods: int | None = None,
        by_version: bool = False,
    ) -> CostReport:
        """With ``periods`` (``since`` and ``until`` given), the report of each of that
        many equal periods of the span as well, from the same read of the records.
        With ``by_version``, the usage of each version that ran as well."""
        versions = (
            await usage_by_version(self._store, function=function, since=since, until=until)
            if by_version
            else None
        )
        if periods is None or since is None or until is None:
            rows = await usage_by_function(self._store, function=function, since=since, until=until)
            return CostReport(
                since=since, until=until, prices=self.prices, usage=rows, versions=versions
            )
        found = await usage_by_period(
            self._store, function=function, since=since, until=until, periods=periods
        )
        step = (until - since) / periods
        parts = [
            CostReport(since + n * step, since + (n + 1) * step, self.prices, rows)
            for n, rows in enumerate(found)
        ]
        return CostReport(since, until, self.prices, merged(found), parts, versions)


def _priced(usage: Usage, prices: Prices) -> FunctionCost:
    seconds = usage.gb_seconds
    request_cost = usage.requests * prices.per_request
    compute_cost = seconds * prices.per_gb_second
    return FunctionCost(
        function=usage.function,
        requests=usage.requests,
        errors=usage.errors,
        throttled=usage.throttled,
        cold_starts=usage.cold_starts,
        duration_ms=usage.duration_ms,
        billed_duration_ms=usage.billed_duration_ms,
        init_duration_ms=usage.init_duration_ms,
        gb_seconds=seconds,
        request_cost=request_cost,
        compute_cost=compute_cost,
        cost=request_cost + compute_cost,
    )
