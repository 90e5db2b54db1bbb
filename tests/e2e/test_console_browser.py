"""The web console at ``/`` as a person uses it: headless Chromium signs in with a token,
sees the deployed functions, follows invocations live, opens one, invokes a function,
draws a chain, redrives a dead-lettered event; a read-only token sees but cannot act.

Each test saves a screenshot of the page it checks in a folder (``CONSOLE_SCREENSHOTS``,
or a temporary one), the pictures of docs/console.md.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.browser import headless_chromium
from support.projects import write_project
from support.server import Server, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


ACCEPT = """
def handler(event, context):
    order = event["data"]
    print(f"accepting order {order['id']}")
    context.emit("console-orders", "order.accepted", order)
    return {"accepted": order["id"]}
"""

SHIP = """
def handler(event, context):
    print(f"shipping order {event['data']['id']}")
    return {"shipped": event["data"]["id"]}
"""

GREET = """
def handler(event, context):
    print("greeting", event.get("name"))
    return {"hello": event.get("name", "nobody")}
"""

FLAKY = """
import os

def handler(event, context):
    if event["data"].get("always") or not os.path.exists(os.environ["FIXED"]):
        raise ValueError(f"cannot process {event['id']}")
    return "done"
"""

# Records when each row of the live stream appears, by the browser's clock.
WATCH_STREAM = """() => {
  window.arrivals = {};
  new MutationObserver(() => {
    for (const row of document.querySelectorAll("#stream tr[data-invocation]")) {
      window.arrivals[row.dataset.invocation] ??= Date.now() / 1000;
    }
  }).observe(document.getElementById("stream"), {childList: true, subtree: true});
}"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with headless_chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def fixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("console-flag") / "fixed"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, fixed: Path) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("console")
    manifest = write_project(
        root / "project",
        {
            "accept": (
                ACCEPT,
                {"triggers": [{"topic": "console-orders", "pattern": {"type": ["order.new"]}}]},
            ),
            "ship": (
                SHIP,
                {
                    "triggers": [
                        {"topic": "console-orders", "pattern": {"type": ["order.accepted"]}}
                    ]
                },
            ),
            "greet": (GREET, {}),
            "flaky": (
                FLAKY,
                {
                    "environment": {"FIXED": str(fixed)},
                    "triggers": [
                        {
                            "topic": "console-jobs",
                            "retry": {"max_attempts": 1},
                            "dead_letter": "console-jobs-failed",
                        }
                    ],
                },
            ),
        },
        topics={"console-orders": {}, "console-jobs": {}},
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


@pytest.fixture
def page(browser: Any, server: Server) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        yield page
    finally:
        context.close()


def sign_in(page: Any, server: Server, token: str) -> None:
    from playwright.sync_api import expect

    page.goto(f"{server.url}/")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#who")).to_contain_text("API token")


def publish(server: Server, topic: str, event: dict[str, Any]) -> None:
    with server.client() as api:
        answer = api.post(
            f"/v1/topics/{topic}/events",
            content=json.dumps({"specversion": "1.0", "source": "console-test", **event}),
            headers={"Content-Type": "application/cloudevents+json"},
        )
    assert answer.status_code == 202, answer.text


def test_signing_in_shows_the_deployed_functions(page: Any, server: Server, shots: Path) -> None:
    from playwright.sync_api import expect

    page.goto(f"{server.url}/")
    page.screenshot(path=shots / "sign-in.png")
    page.get_by_label("API token").fill("tfk_not_a_token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("token")
    expect(page.locator("#nav")).to_be_hidden()

    sign_in(page, server, server.token)
    functions = page.locator("#functions")
    for name in ("accept", "ship", "greet", "flaky"):
        expect(functions.locator(f"tr[data-function='{name}']")).to_be_visible()
    accept = functions.locator("tr[data-function='accept']")
    expect(accept).to_contain_text("live → #1")
    expect(accept).to_contain_text("console-orders backlog 0")
    page.screenshot(path=shots / "functions.png", full_page=True)


def test_an_invocation_shows_in_the_live_stream_within_a_second_of_its_end(
    page: Any, server: Server, shots: Path
) -> None:
    from playwright.sync_api import expect

    sign_in(page, server, server.token)
    page.goto(f"{server.url}/#/stream?function=ship")
    expect(page.locator("#stream-state")).to_have_text("Live")
    expect(page.locator("#stream-function")).to_have_value("ship")
    page.evaluate(WATCH_STREAM)

    publish(server, "console-orders", {"id": "live-1", "type": "order.new", "data": {"id": "L-1"}})
    row = page.locator("#stream tr[data-invocation]")
    expect(row).to_have_count(1)  # ship's, not accept's: the stream is filtered
    expect(row).to_contain_text("ship")
    expect(row).to_contain_text("ok")
    invocation_id = row.get_attribute("data-invocation")
    arrived = page.evaluate("(id) => window.arrivals[id]", invocation_id)
    with server.client() as api:
        record = api.get(f"/v1/invocations/{invocation_id}").json()
    ended = record["started_at"] + record["duration_ms"] / 1000
    assert arrived - ended < 1.0, f"shown {arrived - ended:.3f} s after it ended"

    publish(server, "console-orders", {"id": "live-2", "type": "order.new", "data": {"id": "L-2"}})
    expect(row).to_have_count(2)
    page.screenshot(path=shots / "live.png", full_page=True)

    row.first.get_by_role("link").first.click()
    expect(page.locator("h1")).to_contain_text("Invocation")
    expect(page.locator("dl.fields")).to_contain_text("ship")
    expect(page.locator("dl.fields")).to_contain_text("Cold start")
    expect(page.locator("#result")).to_contain_text('"shipped": "L-2"')
    expect(page.locator("#logs")).to_contain_text("shipping order L-2")
    expect(page.locator(".event pre")).to_contain_text('"type": "order.accepted"')
    page.screenshot(path=shots / "invocation.png", full_page=True)


def test_a_function_is_invoked_from_its_page(page: Any, server: Server, shots: Path) -> None:
    from playwright.sync_api import expect

    sign_in(page, server, server.token)
    page.goto(f"{server.url}/#/functions/greet")
    page.get_by_label("Payload (JSON)").fill("not json")
    page.get_by_role("button", name="Invoke").click()
    expect(page.locator("#invoke-result")).to_contain_text("not JSON")

    page.get_by_label("Payload (JSON)").fill('{"name": "ada"}')
    page.get_by_role("button", name="Invoke").click()
    result = page.locator("#invoke-result")
    expect(result).to_contain_text('"hello": "ada"')
    expect(result.locator(".status")).to_have_text("ok")
    page.screenshot(path=shots / "function.png", full_page=True)

    result.get_by_role("link", name="open the invocation").click()
    expect(page.locator("#logs")).to_contain_text("greeting ada")


def test_the_chain_of_an_event_is_drawn(page: Any, server: Server, shots: Path) -> None:
    from playwright.sync_api import expect

    publish(server, "console-orders", {"id": "chain-1", "type": "order.new", "data": {"id": "C-1"}})
    with server.client() as api:

        def shipped() -> bool:
            found = api.get("/v1/invocations", params={"function": "ship", "logs": True})
            return any("order C-1" in r["logs"] for r in found.json()["invocations"])

        wait_for(shipped, what="the order to be shipped")
    sign_in(page, server, server.token)
    page.goto(f"{server.url}/#/chains/chain-1")
    chain = page.locator("svg#chain")
    # order.new -> accept -> order.accepted -> ship, left to right
    expect(chain.locator("g.node")).to_have_count(4)
    expect(chain.locator("path.edge")).to_have_count(3)
    expect(chain.locator("g.node.event")).to_have_count(2)
    expect(chain.locator("g.node.failed")).to_have_count(0)
    expect(chain).to_contain_text("order.accepted")
    expect(chain).to_contain_text("ship")
    boxes = [
        chain.locator(f"g.node[data-node='{node_id}']").bounding_box()["x"]
        for node_id in ("chain-1",)
    ]
    accept_box = chain.locator("g.node.invocation", has_text="accept").bounding_box()
    ship_box = chain.locator("g.node.invocation", has_text="ship").bounding_box()
    assert boxes[0] < accept_box["x"] < ship_box["x"]
    page.screenshot(path=shots / "chain.png", full_page=True)


def test_a_dead_lettered_event_is_redriven(
    page: Any, server: Server, shots: Path, fixed: Path
) -> None:
    from playwright.sync_api import expect

    for n in (1, 2, 3):
        publish(server, "console-jobs", {"id": f"doomed-{n}", "type": "job", "data": {}})
    with server.client() as api:

        def waiting() -> int:
            found = api.get("/v1/dlq", params={"topic": "console-jobs-failed"}).json()
            return int(found["dead_letters"][0]["pending"])

        wait_for(lambda: waiting() == 3, what="the three jobs in the dead-letter topic")

    def succeeded() -> set[str]:
        with server.client() as api:
            found = api.get("/v1/invocations", params={"function": "flaky", "status": "ok"})
        return {e for r in found.json()["invocations"] for e in r["event_ids"]}

    sign_in(page, server, server.token)
    page.goto(f"{server.url}/#/topics")
    letters = page.locator("table.dead-letters[data-topic='console-jobs-failed']")
    first = letters.locator("tr[data-event='doomed-1']")
    expect(first).to_contain_text("ValueError: cannot process doomed-1")
    expect(letters.locator("tr[data-event='doomed-2']")).to_be_visible()
    expect(letters.locator("tr[data-event='doomed-3']")).to_be_visible()
    expect(page.locator("#topics tr[data-topic='console-jobs']")).to_be_visible()
    page.screenshot(path=shots / "topics.png", full_page=True)

    fixed.write_text("yes")  # the fix: the function now succeeds
    letters.locator("tr[data-event='doomed-2']").get_by_role("button", name="Redrive").click()
    expect(page.get_by_role("status")).to_contain_text("Redrove 1 event of console-jobs-failed")
    expect(letters.locator("tr[data-event='doomed-2']")).to_have_count(0)
    expect(letters.locator("tr[data-event='doomed-1']")).to_be_visible()
    expect(letters.locator("tr[data-event='doomed-3']")).to_be_visible()
    expect(page.locator("section.card", has=letters).locator("h2")).to_contain_text("2 waiting")
    wait_for(lambda: succeeded() == {"doomed-2"}, what="the middle job to run again")

    page.get_by_role("button", name="Redrive all").click()
    expect(page.get_by_role("status")).to_contain_text("Redrove 2 events of console-jobs-failed")
    expect(letters).to_have_count(0)
    expect(page.locator("#empty-dead-letters")).to_contain_text("console-jobs-failed")
    wait_for(
        lambda: succeeded() == {"doomed-1", "doomed-2", "doomed-3"},
        what="the other two jobs to run again",
    )


def test_a_read_only_token_sees_but_cannot_invoke_or_redrive(page: Any, server: Server) -> None:
    from playwright.sync_api import expect

    with server.client() as api:
        issued = api.post("/v1/tokens", json={"name": "viewer", "scopes": ["read"]})
        assert issued.status_code == 201, issued.text
    token = issued.json()["token"]

    sign_in(page, server, token)
    expect(page.locator("#who")).to_contain_text("'viewer' · read")
    expect(page.locator("#functions tr[data-function='greet']")).to_be_visible()
    page.goto(f"{server.url}/#/functions/greet")
    expect(page.locator("#invoke-refused")).to_contain_text("may not invoke greet")
    expect(page.locator("form#invoke")).to_have_count(0)
    expect(page.locator("#invocations, .muted").first).to_be_visible()

    # and what the page would send is refused by the API all the same
    answer = httpx.post(
        f"{server.url}/v1/functions/greet/invoke",
        headers={"Authorization": f"Bearer {token}"},
        content=b"{}",
    )
    assert answer.status_code == 403

    publish(server, "console-jobs", {"id": "stuck", "type": "job", "data": {"always": True}})
    with server.client() as api:

        def stuck() -> bool:
            found = api.get("/v1/dlq", params={"topic": "console-jobs-failed"}).json()
            return any(i["event"]["id"] == "stuck" for i in found["dead_letters"][0]["events"])

        wait_for(stuck, what="the stuck job in the dead-letter topic")
    page.goto(f"{server.url}/#/topics")
    expect(page.locator("tr[data-event='stuck']")).to_contain_text("cannot process stuck")
    expect(page.get_by_role("button", name="Redrive all")).to_have_count(0)
    expect(page.get_by_role("button", name="Redrive", exact=True)).to_have_count(0)


def test_costs_and_nodes_pages(page: Any, server: Server, shots: Path) -> None:
    from playwright.sync_api import expect

    with server.client() as api:
        for name in ("ada", "grace", "linus"):
            assert api.post("/v1/functions/greet/invoke", json={"name": name}).status_code == 200
        wait_for(
            lambda: (
                api.get("/v1/costs", params={"function": "greet"}).json()["total"]["requests"] >= 3
            ),
            what="the invocations to be metered",
        )
    sign_in(page, server, server.token)
    page.goto(f"{server.url}/#/costs?range=1h")
    expect(page.locator("#range")).to_have_value("1h")
    chart = page.locator("svg#cost-chart")
    expect(chart.locator("rect").first).to_be_visible()
    greet = page.locator("#costs tr", has_text="greet")
    expect(greet).to_be_visible()
    expect(page.locator("#performance tr", has_text="greet")).to_be_visible()
    page.screenshot(path=shots / "costs.png", full_page=True)

    page.get_by_role("link", name="Nodes").click()
    expect(page.locator("#nodes tbody tr")).to_have_count(1)
    expect(page.locator("#nodes")).to_contain_text("this one")
    expect(page.locator("#nodes")).to_contain_text("running")
    page.screenshot(path=shots / "nodes.png", full_page=True)
