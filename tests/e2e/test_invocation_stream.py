"""The live stream of invocations (``GET /v1/invocations/stream``, server-sent events)
and ``GET /v1/whoami``, as any client reads them, on a real node."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from support.projects import write_project
from support.server import Server

pytestmark = pytest.mark.e2e

ECHO = "def handler(event, context):\n    return event\n"
FAIL = "def handler(event, context):\n    raise ValueError('no')\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("stream")
    manifest = write_project(root / "project", {"echo": (ECHO, {}), "fail": (FAIL, {})})
    server = Server(root / "data").start("--deploy", str(manifest))
    try:
        yield server
    finally:
        server.stop()


def invoke(server: Server, function: str, payload: dict[str, Any]) -> str:
    """Invoke synchronously; the invocation's id."""
    with server.client(timeout=60) as api:
        answer = api.post(f"/v1/functions/{function}/invoke", json=payload)
    return answer.headers["x-triggerfish-invocation-id"]


def read_until(
    server: Server, query: str, wanted: set[str], headers: dict[str, str] | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """The stream's invocation events, as (event id, record), until every invocation
    of ``wanted`` came (each read waits at most 30 s)."""
    found: list[tuple[str, dict[str, Any]]] = []
    with (
        server.client(timeout=httpx.Timeout(30.0)) as api,
        api.stream("GET", f"/v1/invocations/stream{query}", headers=headers or {}) as answer,
    ):
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        event: dict[str, str] = {}
        for line in answer.iter_lines():
            if line:
                name, _, value = line.partition(": ")
                event[name] = value
                continue
            if event.get("event") == "invocation":
                found.append((event["id"], json.loads(event["data"])))
                if wanted <= {record["id"] for _, record in found}:
                    break
            event = {}
    return found


def test_the_stream_shows_each_invocation_filtered_by_function_and_status(
    server: Server,
) -> None:
    first = invoke(server, "echo", {"n": 1})
    failed = invoke(server, "fail", {})
    second = invoke(server, "echo", {"n": 2})

    events = read_until(server, "?function=echo&status=ok&after=0", {first, second})

    records = [record for _, record in events]
    assert {r["id"] for r in records} >= {first, second}
    assert failed not in {r["id"] for r in records}
    assert {(r["function"], r["status"]) for r in records} == {("echo", "ok")}
    ids = [event_id for event_id, _ in events]
    assert ids == sorted(ids)  # in the order they were written: a cursor


def test_a_reconnecting_client_misses_nothing(server: Server) -> None:
    earlier = invoke(server, "echo", {"n": 3})
    events = read_until(server, "?after=0", {earlier})
    cursor = next(event_id for event_id, record in events if record["id"] == earlier)
    later = invoke(server, "fail", {})

    # Reconnecting as EventSource does, with the last event id it saw.
    resumed = read_until(server, "", {later}, {"Last-Event-ID": cursor})

    assert earlier not in {record["id"] for _, record in resumed}
    assert [r["status"] for _, r in resumed if r["id"] == later] == ["error"]


def test_whoami_says_what_a_read_token_may_do(server: Server) -> None:
    made = server.cli("tokens", "create", "--scope", "read", "--json", check=True).stdout
    token = json.loads(made)["token"]
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as api:
        answer = api.get("/v1/whoami", params={"can": ["read", "invoke:echo"]})
    assert answer.status_code == 200
    assert answer.json()["can"] == {"read": True, "invoke:echo": False}
    with httpx.Client(base_url=server.url) as anonymous:
        assert anonymous.get("/v1/whoami").status_code == 401
        assert anonymous.get("/v1/invocations/stream").status_code == 401
