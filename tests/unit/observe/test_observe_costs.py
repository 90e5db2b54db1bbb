"""Costs: sums of requests and GB-seconds per function, priced at the configured rates."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from triggerfish.observe.costs import CostMeter, Prices, gb_seconds
from triggerfish.runtime.report import billed_duration
from triggerfish.store import InvocationRecord, SqlStore, Status, id_floor

T0 = 1_700_000_000.0


def make(
    function: str,
    at: float,
    *,
    status: Status = "ok",
    duration_ms: float = 10.2,
    memory: int = 512,
    init_ms: float | None = None,
    serial: int = 0,
) -> InvocationRecord:
    ran = status != "throttled"
    return InvocationRecord(
        # An id made at ``at``: ids sort by the time of the request.
        id=id_floor(at)[:10] + f"{serial:016d}",
        function=function,
        version="v1",
        status=status,
        started_at=at if ran else 0.0,
        duration_ms=duration_ms if ran else 0.0,
        billed_duration_ms=billed_duration(duration_ms) if ran else 0,
        memory_size_mb=memory,
        init_duration_ms=init_ms,
        cold_start=init_ms is not None,
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    async with SqlStore(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}") as opened:
        yield opened


def test_billed_duration_rounds_up_to_the_millisecond() -> None:
    assert [billed_duration(d) for d in (0.01, 1.0, 1.001, 10.2, 99.999)] == [1, 1, 2, 11, 100]
    assert gb_seconds(1024, 1000) == 1.0
    assert gb_seconds(128, 1) == pytest.approx(0.000125)


async def test_report_sums_requests_and_gb_seconds_per_function(store: SqlStore) -> None:
    await store.record_invocations(
        [
            make("resize", T0 + 1, init_ms=80.0, serial=1),
            make("resize", T0 + 2, status="error", serial=2),
            make("resize", T0 + 3, status="throttled", serial=3),
            make("notify", T0 + 4, memory=128, duration_ms=0.3, serial=4),
        ]
    )
    prices = Prices(per_request=0.25 / 1_000_000, per_gb_second=0.00002)

    report = await CostMeter(store, prices=prices).report()

    by_name = {row.function: row for row in report.functions}
    assert list(by_name) == ["notify", "resize"]
    resize = by_name["resize"]
    assert (resize.requests, resize.errors, resize.throttled, resize.cold_starts) == (2, 1, 1, 1)
    assert resize.billed_duration_ms == 22
    assert resize.gb_seconds == pytest.approx(2 * 0.5 * 0.011)
    assert resize.cost == pytest.approx(2 * 0.25e-6 + 2 * 0.5 * 0.011 * 0.00002)
    notify = by_name["notify"]
    assert notify.gb_seconds == pytest.approx(0.125 * 0.001)
    total = report.total
    assert total.requests == 3
    assert total.gb_seconds == pytest.approx(resize.gb_seconds + notify.gb_seconds)
    assert total.cost == pytest.approx(resize.cost + notify.cost)
    body = report.to_json()
    assert body["total"]["requests"] == 3
    assert body["prices"] == {"per_request": 0.25e-6, "per_gb_second": 0.00002}


async def test_report_filters_by_function_and_request_time(store: SqlStore) -> None:
    await store.record_invocations(
        [make("resize", T0 + n * 10, serial=n) for n in range(5)]
        + [make("notify", T0 + 15, serial=9)]
    )
    meter = CostMeter(store)

    window = await meter.report(since=T0 + 10, until=T0 + 30)
    only = await meter.report(function="notify")

    assert {r.function: r.requests for r in window.functions} == {"resize": 2, "notify": 1}
    assert [(r.function, r.requests) for r in only.functions] == [("notify", 1)]


async def test_no_invocations_cost_nothing(store: SqlStore) -> None:
    report = await CostMeter(store).report()

    assert report.functions == []
    assert (report.total.requests, report.total.gb_seconds, report.total.cost) == (0, 0.0, 0.0)


def test_default_prices_are_aws_lambdas_x86_prices() -> None:
    prices = Prices()
    assert prices.per_request * 1_000_000 == pytest.approx(0.20)
    assert prices.per_gb_second == 0.0000166667


async def test_periods_split_the_span_as_a_report_per_period_would(store: SqlStore) -> None:
    await store.record_invocations(
        [make("resize", T0 + n * 7, serial=n) for n in range(10)]
        + [make("notify", T0 + 50, status="error", serial=20)]
    )
    meter = CostMeter(store)

    report = await meter.report(since=T0, until=T0 + 60, periods=4)

    assert report.periods is not None
    for period in report.periods:
        alone = await meter.report(since=period.since, until=period.until)
        assert period.functions == alone.functions
    assert [p.total.requests for p in report.periods] == [3, 2, 2, 3]
    whole = await meter.report(since=T0, until=T0 + 60)
    assert report.functions == whole.functions
    body = report.to_json()
    assert [p["since"] for p in body["periods"]] == [T0, T0 + 15, T0 + 30, T0 + 45]
    assert body["periods"][3]["functions"][0]["errors"] == 1
