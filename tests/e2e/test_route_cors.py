"""CORS of HTTP routes on a running node: preflights answered without running the
function, answers carrying the allowed origin, and a browser on another origin that can
call a route with ``cors`` and cannot call one without."""

from __future__ import annotations

import http.server as pages
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from support.browser import headless_chromium
from support.projects import write_project
from support.server import Server, wait_for

pytestmark = pytest.mark.e2e

PAGES = "http://localhost:*"  # the browser's page is served on localhost, the node on 127.0.0.1

SHOP = """
import json

def handler(event, context):
    if event["routeKey"] == "POST /orders":
        order = json.loads(event["body"])
        return {"statusCode": 201, "headers": {"X-Order": "7", "Access-Control-Allow-Origin": "*"},
                "body": json.dumps({"ordered": order["item"]})}
    return {"item": event.get("pathParameters", {}).get("id", "closed")}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("route-cors")
    triggers = [
        {"name": "items", "http": {"route": "GET /items/{id}", "cors": {
            "allow_origins": [PAGES], "max_age": 600}}},
        {"name": "orders", "http": {"route": "POST /orders", "cors": {
            "allow_origins": [PAGES], "allow_headers": ["content-type"],
            "expose_headers": ["x-order"]}}},
        {"name": "closed", "http": {"route": "GET /closed"}},
        {"name": "cart", "http": {"route": "ANY /cart/{proxy+}", "cors": True}},
    ]  # fmt: skip
    manifest = write_project(root / "project", {"shop": (SHOP, {"triggers": triggers})})
    server = Server(root / "data")
    server.start("--deploy", str(manifest))
    yield server
    server.stop()


@pytest.fixture
def http(server: Server) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def test_a_preflight_is_answered_without_running_the_function(http: httpx.Client) -> None:
    since = time.time()
    answer = http.options(
        "/fn/orders",
        headers={
            "Origin": "http://localhost:3000",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert answer.status_code == 204
    assert answer.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert answer.headers["access-control-allow-methods"] == "POST"
    assert answer.headers["access-control-allow-headers"] == "content-type"
    # A route of every method would run the function for an OPTIONS without CORS.
    cart = http.options(
        "/fn/cart/3",
        headers={"Origin": "https://elsewhere.org", "Access-Control-Request-Method": "DELETE"},
    )
    assert cart.status_code == 204
    assert cart.headers["access-control-allow-origin"] == "*"
    refused = http.options(
        "/fn/orders",
        headers={"Origin": "https://elsewhere.org", "Access-Control-Request-Method": "POST"},
    )
    assert refused.status_code == 403
    assert "access-control-allow-origin" not in refused.headers

    # The records are written in order: once the GET's is there, a preflight's would be.
    got = http.get("/fn/items/1")
    invocation = got.headers["x-triggerfish-invocation-id"]

    def records() -> list[dict[str, Any]] | None:
        rows = http.get("/v1/invocations", params={"function": "shop", "since": since}).json()
        found = rows["invocations"]
        return found if any(row["id"] == invocation for row in found) else None

    assert [row["id"] for row in wait_for(records, what="the GET's record")] == [invocation]


def test_answers_carry_the_allowed_origin_only(http: httpx.Client) -> None:
    allowed = http.get("/fn/items/5", headers={"Origin": "http://localhost:8000"})
    assert allowed.json() == {"item": "5"}
    assert allowed.headers["access-control-allow-origin"] == "http://localhost:8000"
    assert "origin" in allowed.headers["vary"].lower()

    other = http.get("/fn/items/5", headers={"Origin": "https://elsewhere.org"})
    assert other.json() == {"item": "5"}
    assert "access-control-allow-origin" not in other.headers

    # The function's own CORS headers give way to the route's.
    ordered = http.post(
        "/fn/orders", json={"item": "book"}, headers={"Origin": "https://elsewhere.org"}
    )
    assert ordered.status_code == 201
    assert "access-control-allow-origin" not in ordered.headers


ORDER = """async (url) => {
  try {
    const answer = await fetch(url, {
      method: "POST", body: JSON.stringify({item: "pen"}),
      headers: {"Content-Type": "application/json"},
    });
    return {status: answer.status, order: answer.headers.get("X-Order"),
            body: await answer.json()};
  } catch (error) {
    return {error: String(error)};
  }
}"""

READ = """async (url) => {
  try {
    const answer = await fetch(url);
    return {status: answer.status, body: await answer.json()};
  } catch (error) {
    return {error: String(error)};
  }
}"""


@pytest.fixture(scope="module")
def page_origin() -> Iterator[str]:
    """A page server of another origin than the node's (localhost vs 127.0.0.1)."""

    class Blank(pages.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<!doctype html><title>shop</title>"
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = pages.ThreadingHTTPServer(("127.0.0.1", 0), Blank)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_browser_on_another_origin_calls_a_route_with_cors(
    server: Server, page_origin: str
) -> None:
    with headless_chromium() as browser:
        page = browser.new_page()
        try:
            page.goto(f"{page_origin}/")
            ordered = page.evaluate(ORDER, f"{server.url}/fn/orders")
            assert ordered == {"status": 201, "order": "7", "body": {"ordered": "pen"}}
            item = page.evaluate(READ, f"{server.url}/fn/items/3")
            assert item == {"status": 200, "body": {"item": "3"}}
            closed = page.evaluate(READ, f"{server.url}/fn/closed")
            assert "error" in closed, closed  # the browser keeps the answer from the page
        finally:
            page.close()
