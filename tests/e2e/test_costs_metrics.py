"""Metering against a running server: ``/v1/costs`` and ``triggerfish costs`` add up the
invocation records, idle functions cost nothing, and ``/metrics`` counts invocations."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from support.projects import write_project
from support.server import Server, wait_for

pytestmark = pytest.mark.e2e

WORK = """
import time

def handler(event, context):
    time.sleep(event.get("sleep", 0))
    if event.get("fail"):
        raise ValueError("asked to fail")
    return "done"
"""
IDLE = "def handler(event, context):\n    return 'never called'\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("costs")
    manifest = write_project(
        root / "project", {"work": (WORK, {"memory": 256}), "idle": (IDLE, {})}
    )
    # The first calls start their environment (counted as a cold start), as they do
    # where deploys do not start one ahead.
    server = Server(root / "data", env={"TRIGGERFISH_WARM_ON_DEPLOY": "false"})
    server.start("--deploy", str(manifest))
    yield server
    server.stop()


@pytest.fixture
def api(server: Server) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def scrape(server: Server) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = httpx.get(f"{server.url}/metrics")  # no token
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def count(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def records(api: httpx.Client, function: str) -> list[dict[str, Any]]:
    page = api.get("/v1/invocations", params={"function": function, "limit": 1000})
    result: list[dict[str, Any]] = page.json()["invocations"]
    return result


def test_metrics_count_invocations_errors_and_cold_starts(
    server: Server, api: httpx.Client
) -> None:
    before = scrape(server)
    for payload in ({"sleep": 0.01}, {}, {"fail": True}):
        api.post("/v1/functions/work/invoke", json=payload)

    after = scrape(server)

    def moved(name: str, **labels: str) -> float:
        return count(after, name, **labels) - count(before, name, **labels)

    assert moved("triggerfish_invocations_total", function="work", status="ok") == 2
    assert moved("triggerfish_invocations_total", function="work", status="error") == 1
    assert moved("triggerfish_invocation_errors_total", function="work") == 1
    assert moved("triggerfish_invocation_duration_seconds_count", function="work") == 3
    assert count(after, "triggerfish_cold_starts_total", function="work") >= 1
    assert count(after, "triggerfish_init_duration_seconds_count", function="work") >= 1
    assert count(after, "triggerfish_invocations_total", function="idle") == 0
    # Read from the executor when scraped: the environment stays warm after the calls.
    assert count(after, "triggerfish_warm_environments", function="work") >= 1
    assert count(after, "triggerfish_concurrent_executions", function="work") == 0


def test_costs_add_up_the_invocation_records(server: Server, api: httpx.Client) -> None:
    for n in range(4):
        api.post("/v1/functions/work/invoke", json={"sleep": 0.002 * n})
    stored = wait_for(
        lambda: (r := records(api, "work")) and len(r) >= 4 and r, what="invocation records"
    )
    for record in stored:
        assert record["billed_duration_ms"] == max(1, math.ceil(record["duration_ms"]))
        assert record["memory_size_mb"] == 256

    report = api.get("/v1/costs", params={"function": "work"}).json()

    (work,) = report["functions"]
    billed = sum(r["billed_duration_ms"] for r in stored)
    gb_s = sum(r["memory_size_mb"] / 1024 * r["billed_duration_ms"] / 1000 for r in stored)
    assert work["requests"] == len(stored)
    assert work["billed_duration_ms"] == billed
    assert work["gb_seconds"] == pytest.approx(gb_s)
    prices = report["prices"]
    assert prices["per_request"] == pytest.approx(0.20 / 1_000_000)
    assert work["cost"] == pytest.approx(
        len(stored) * prices["per_request"] + gb_s * prices["per_gb_second"]
    )
    assert report["total"]["requests"] == len(stored)


def test_idle_functions_cost_nothing(server: Server, api: httpx.Client) -> None:
    everything = api.get("/v1/costs").json()
    assert "idle" not in {row["function"] for row in everything["functions"]}
    future = api.get("/v1/costs", params={"since": time.time() + 3600}).json()
    assert future["functions"] == []
    assert future["total"]["cost"] == 0


def test_costs_need_a_token_and_metrics_do_not(server: Server) -> None:
    assert httpx.get(f"{server.url}/v1/costs").status_code == 401
    assert httpx.get(f"{server.url}/metrics").status_code == 200


def test_cli_costs_matches_the_api(server: Server, api: httpx.Client) -> None:
    known = len(records(api, "work"))
    api.post("/v1/functions/work/invoke", json={})
    wait_for(lambda: len(records(api, "work")) > known, what="the new record")
    params = {"function": "work", "since": time.time() - 86400}
    expected = api.get("/v1/costs", params=params).json()["total"]

    out = server.cli("costs", "--function", "work", "--since", "24h", "--json", check=True)
    table = server.cli("costs", check=True)
    # A record of an earlier test's asynchronous call may land between the two reads:
    # the CLI then reports the API's figures as of its own read, the later of the two.
    later = api.get("/v1/costs", params=params).json()["total"]

    body = json.loads(out.stdout)
    assert body["total"]["requests"] in (expected["requests"], later["requests"])
    assert body["total"]["gb_seconds"] in (
        pytest.approx(expected["gb_seconds"]),
        pytest.approx(later["gb_seconds"]),
    )
    assert "work" in table.stdout
    assert "per million requests" in table.stdout
