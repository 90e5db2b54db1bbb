"""The console's durable executions as a person follows one: a durable function with two
steps and a wait runs, its function's page lists the execution, and the execution's page
draws its operations as a timeline, in order, each with its duration; a click on a step
shows its result. Screenshots go where the console's other tests put theirs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.browser import headless_chromium
from support.projects import write_project
from support.server import Server, wait_for

pytest.importorskip("aws_durable_execution_sdk_python")

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PACKING = """
import time
from aws_durable_execution_sdk_python import DurableContext, durable_execution
from aws_durable_execution_sdk_python.config import Duration


def slow(seconds, value):
    time.sleep(seconds)
    return value


@durable_execution
def handler(event, context: DurableContext):
    box = context.step(lambda _: slow(0.05, f"box-{event['order']}"), name="reserve")
    context.wait(Duration.from_seconds(1), name="cool-down")
    label = context.step(lambda _: slow(0.15, f"label-{box}"), name="ship")
    return {"label": label}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("console-executions")
    manifest = write_project(
        root / "project",
        {
            "packing": (
                PACKING,
                {"durable": {"execution_timeout": "1h", "retention": "1d"}, "timeout": 30},
            )
        },
    )
    server = Server(root / "data").start("--deploy", str(manifest))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = os.environ.get("CONSOLE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        return Path(folder)
    return tmp_path_factory.mktemp("console-screenshots")


@pytest.fixture(scope="module")
def execution(server: Server) -> dict[str, Any]:
    """An execution of ``packing`` that ran to its end, as the API shows it."""
    with server.client() as api:
        answer = api.post("/2015-03-31/functions/packing/invocations", content=b'{"order": 7}')
        assert answer.status_code == 200, answer.text
        assert answer.json()["Status"] == "RUNNING"  # suspended on its wait

        def ended() -> dict[str, Any] | None:
            found = api.get("/v1/executions", params={"function": "packing"}).json()
            done = [e for e in found["executions"] if e["status"] == "SUCCEEDED"]
            return done[0] if done else None

        listed = wait_for(ended, timeout=20, what="the execution to succeed")
        record: dict[str, Any] = api.get(f"/v1/executions/{listed['id']}").json()
    return record


def shown_ms(text: str) -> float:
    number, unit = text.split()
    return float(number) * (1000 if unit == "s" else 1)


def test_an_execution_page_draws_its_steps_in_order_with_their_durations(
    server: Server, execution: dict[str, Any], shots: Path
) -> None:
    from playwright.sync_api import expect

    steps = {op["name"]: op for op in execution["operations"] if op["type"] == "STEP"}
    assert set(steps) == {"reserve", "ship"}

    with headless_chromium() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 860})
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.goto(f"{server.url}/")
        page.get_by_label("API token").fill(server.token)
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("#who")).to_contain_text("API token")

        # The function's page lists the execution and opens it.
        page.goto(f"{server.url}/#/functions/packing")
        row = page.locator(f"#function-executions tr[data-execution='{execution['id']}']")
        expect(row).to_contain_text("succeeded")
        row.get_by_role("link").first.click()

        expect(page.locator("h1")).to_contain_text("Execution")
        bars = page.locator("#timeline .bar")
        expect(bars).to_have_count(len(execution["operations"]))
        names = [name for name in bars.evaluate_all("(g) => g.map((b) => b.dataset.name)") if name]
        assert names == ["reserve", "cool-down", "ship"]
        for name, op in steps.items():
            bar = page.locator(f"#timeline .bar[data-name='{name}']")
            expect(bar).to_have_class("bar step")  # ended, not failed
            took = (op["ended_at"] - op["started_at"]) * 1000
            assert shown_ms(bar.get_attribute("data-duration") or "") == pytest.approx(
                took, abs=0.06
            )
            expect(bar.locator("text.duration")).to_have_text(bar.get_attribute("data-duration"))
        # Left to right as they happened: the second step starts after the wait ends.
        spans = {
            name: page.locator(f"#timeline .bar[data-name='{name}'] rect.span").bounding_box()
            for name in ("reserve", "cool-down", "ship")
        }
        assert all(spans.values())
        reserve, wait, ship = (spans[n] for n in ("reserve", "cool-down", "ship"))
        assert reserve["x"] <= wait["x"]
        assert wait["x"] + wait["width"] <= ship["x"] + 1

        page.locator("#timeline .bar[data-name='ship']").click()
        expect(page.locator("#operation")).to_contain_text('"label-box-7"')
        expect(page.locator("#execution-result")).to_contain_text('"label": "label-box-7"')
        page.screenshot(path=shots / "execution.png", full_page=True)

        page.goto(f"{server.url}/#/executions?function=packing")
        expect(page.locator(f"#executions tr[data-execution='{execution['id']}']")).to_be_visible()
        page.screenshot(path=shots / "executions.png", full_page=True)
        context.close()
