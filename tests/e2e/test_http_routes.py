"""HTTP routes against a running server: the request as an API Gateway 2.0 event, the
function's return value as the response, and per-route auth."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterator

import httpx
import pytest

from support.projects import write_project
from support.server import Server

pytestmark = pytest.mark.e2e

ROUTE_SECRET = "route-secret-for-tests"

API = """
import base64, json

PIXEL = bytes(range(256))

def handler(event, context):
    route = event["routeKey"]
    if route == "POST /orders/{id}":
        order = event["pathParameters"]["id"]
        return {
            "statusCode": 201,
            "headers": {"X-Order": order, "Content-Type": "text/plain"},
            "multiValueHeaders": {"X-Tag": ["a", "b"]},
            "cookies": ["session=abc; Path=/", "theme=dark"],
            "body": "created " + order,
        }
    if route == "GET /plain":
        return {"hello": "world"}
    if route == "GET /pixel":
        return {"statusCode": 200, "headers": {"content-type": "application/octet-stream"},
                "body": base64.b64encode(PIXEL).decode(), "isBase64Encoded": True}
    if route == "GET /fail":
        raise RuntimeError("boom")
    return {"statusCode": 200, "body": json.dumps(event)}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("routes")
    triggers = [
        {"name": "orders", "http": {"route": "POST /orders/{id}"}},
        {"name": "plain", "http": {"route": "GET /plain"}},
        {"name": "pixel", "http": {"route": "GET /pixel"}},
        {"name": "fail", "http": {"route": "GET /fail"}},
        {"name": "echo", "http": {"route": "ANY /echo/{proxy+}"}},
        {"name": "token", "http": {"route": "ANY /private/token", "auth": "token"}},
        {"name": "signed", "http": {"route": "POST /private/signed", "auth": "hmac",
                                    "secret": "env:ROUTE_SECRET"}},
    ]  # fmt: skip
    manifest = write_project(root / "project", {"api": (API, {"triggers": triggers})})
    server = Server(root / "data", env={"ROUTE_SECRET": ROUTE_SECRET})
    server.start("--deploy", str(manifest))
    yield server
    server.stop()


@pytest.fixture
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        yield client


def test_status_headers_cookies_and_body_come_from_the_function(http: httpx.Client) -> None:
    response = http.post("/fn/orders/42", json={"item": "book"})
    assert response.status_code == 201
    assert response.text == "created 42"
    assert response.headers["x-order"] == "42"
    assert response.headers["content-type"] == "text/plain"
    assert response.headers.get_list("x-tag") == ["a", "b"]
    assert response.headers.get_list("set-cookie") == ["session=abc; Path=/", "theme=dark"]


def test_a_plain_return_value_is_a_json_200(http: httpx.Client) -> None:
    response = http.get("/fn/plain")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"hello": "world"}


def test_base64_response_bodies_are_sent_as_bytes(http: httpx.Client) -> None:
    response = http.get("/fn/pixel")
    assert response.status_code == 200
    assert response.content == bytes(range(256))


def test_a_failing_function_is_a_502(http: httpx.Client) -> None:
    response = http.get("/fn/fail")
    assert response.status_code == 502
    assert response.json() == {"message": "Internal Server Error"}


def test_unknown_routes_and_methods_are_404(http: httpx.Client) -> None:
    assert http.get("/fn/nothing/here").status_code == 404
    assert http.get("/fn/orders/42").json() == {"message": "Not Found"}


def test_the_request_arrives_as_an_api_gateway_v2_event(http: httpx.Client) -> None:
    response = http.put(
        "/fn/echo/a/b%20c?x=1&y=2&x=3&empty=",
        content=b"hello",
        headers={"Content-Type": "text/plain", "X-Multi": "one", "Cookie": "a=1; b=2"},
    )
    assert response.status_code == 200
    event = response.json()
    assert event["version"] == "2.0"
    assert event["routeKey"] == "ANY /echo/{proxy+}"
    assert event["rawPath"] == "/echo/a/b%20c"
    assert event["rawQueryString"] == "x=1&y=2&x=3&empty="
    assert event["queryStringParameters"] == {"x": "1,3", "y": "2", "empty": ""}
    assert event["pathParameters"] == {"proxy": "a/b c"}
    assert event["cookies"] == ["a=1", "b=2"]
    assert event["headers"]["x-multi"] == "one"
    assert "cookie" not in event["headers"]
    assert event["body"] == "hello"
    assert event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["http"]["method"] == "PUT"
    assert context["http"]["path"] == "/echo/a/b%20c"
    assert context["http"]["sourceIp"] == "127.0.0.1"
    assert context["stage"] == "$default"
    assert context["routeKey"] == "ANY /echo/{proxy+}"
    assert isinstance(context["timeEpoch"], int)


def test_binary_request_bodies_arrive_base64_encoded(http: httpx.Client) -> None:
    payload = bytes(range(256))
    response = http.post(
        "/fn/echo/upload", content=payload, headers={"Content-Type": "application/octet-stream"}
    )
    event = response.json()
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == payload


def test_token_auth_needs_an_api_token_that_the_function_never_sees(
    server: Server, http: httpx.Client
) -> None:
    refused = http.get("/fn/private/token")
    assert refused.status_code == 401
    assert refused.json() == {"message": "Unauthorized"}
    assert (
        http.get("/fn/private/token", headers={"Authorization": "Bearer nope"}).status_code == 401
    )
    allowed = http.get("/fn/private/token", headers={"Authorization": f"Bearer {server.token}"})
    assert allowed.status_code == 200
    assert "authorization" not in allowed.json()["headers"]


def test_hmac_auth_checks_the_body_signature(http: httpx.Client) -> None:
    body = b'{"amount": 10}'
    good = hmac.new(ROUTE_SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json"}
    ok = http.post(
        "/fn/private/signed", content=body, headers={**headers, "X-Triggerfish-Signature": good}
    )
    assert ok.status_code == 200
    tampered = http.post(
        "/fn/private/signed",
        content=b'{"amount": 1000}',
        headers={**headers, "X-Triggerfish-Signature": f"sha256={good}"},
    )
    assert tampered.status_code == 401
    assert http.post("/fn/private/signed", content=body, headers=headers).status_code == 401
