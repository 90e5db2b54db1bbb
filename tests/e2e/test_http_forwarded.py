"""HTTP routes set API Gateway's ``X-Forwarded-For``, ``-Proto`` and ``-Port`` from the
client the server saw, appending to a chain the request carried, and ``sourceIp``
agrees with them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from support.projects import write_project
from support.server import Server

pytestmark = pytest.mark.e2e

ECHO = """
def handler(event, context):
    return {"headers": event["headers"], "sourceIp": event["requestContext"]["http"]["sourceIp"]}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("forwarded")
    manifest = write_project(
        root / "project", {"echo": (ECHO, {"triggers": [{"http": {"route": "GET /echo"}}]})}
    )
    server = Server(root / "data").start("--deploy", str(manifest))
    yield server
    server.stop()


def echo(server: Server, *, source: str = "127.0.0.1", **headers: str) -> dict[str, Any]:
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, timeout=30) as http:
        response = http.get(f"{server.url}/fn/echo", headers=headers)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_a_direct_request_gets_the_headers_of_its_own_connection(server: Server) -> None:
    seen = echo(server)
    assert seen["headers"]["x-forwarded-for"] == "127.0.0.1"
    assert seen["headers"]["x-forwarded-proto"] == "http"
    assert seen["headers"]["x-forwarded-port"] == str(server.port)
    assert seen["sourceIp"] == "127.0.0.1"


def test_a_chain_from_an_untrusted_client_is_appended_to(server: Server) -> None:
    # 127.0.0.2 is a loopback address the server does not trust as a proxy.
    seen = echo(server, source="127.0.0.2", **{"X-Forwarded-For": "203.0.113.7"})
    assert seen["headers"]["x-forwarded-for"] == "203.0.113.7, 127.0.0.2"
    assert seen["headers"]["x-forwarded-proto"] == "http"
    assert seen["sourceIp"] == "127.0.0.2"


def test_a_trusted_proxy_in_front_keeps_its_chain_scheme_and_port(server: Server) -> None:
    proxied = {
        "X-Forwarded-For": "198.51.100.4, 203.0.113.7",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Port": "443",
    }
    seen = echo(server, **proxied)
    assert seen["headers"]["x-forwarded-for"] == "198.51.100.4, 203.0.113.7"
    assert seen["headers"]["x-forwarded-proto"] == "https"
    assert seen["headers"]["x-forwarded-port"] == "443"
    assert seen["sourceIp"] == "203.0.113.7"
