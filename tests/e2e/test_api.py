"""The HTTP API and CLI against one running server: invoking, bad input, tokens."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from support.projects import write_project
from support.server import Server, wait_for

pytestmark = pytest.mark.e2e

ECHO = """
import asyncio, logging

def handler(event, context):
    print("got", event)
    logging.getLogger("echo").warning("warned")
    if event.get("fail"):
        raise KeyError("no such thing")
    if event.get("emit"):
        context.emit("chain", "echo.done", {"from": context.function_name})
    return {"echo": event, "request": context.aws_request_id,
            "remaining": context.get_remaining_time_in_millis()}
"""
ASYNC_ECHO = """
import asyncio

async def handler(event, context):
    await asyncio.sleep(0.01)
    return {"async": True, "n": event.get("n")}
"""
SLEEPY = """
import time

def handler(event, context):
    time.sleep(event.get("sleep", 1))
    return "slept"
"""
COUNTER = """
import os

def handler(event, context):
    path = os.environ["OUT"]
    tries = len(open(path).read().split()) if os.path.exists(path) else 0
    with open(path, "a") as f:
        f.write("x\\n")
    if tries < 1:
        raise RuntimeError("first async attempt fails")
    return "ok"
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("api")
    manifest = write_project(
        root / "project",
        {
            "echo": (ECHO, {}),
            "aecho": (ASYNC_ECHO, {}),
            "sleepy": (SLEEPY, {"max_concurrency": 1, "timeout": 5}),
            "counter": (
                COUNTER,
                {
                    "environment": {"OUT": str(root / "counter.txt")},
                    "async_retry": {"max_attempts": 3},
                },
            ),
            "nohandler": ("def other(event, context):\n    return 1\n", {}),
            "broken": ("def handler(event, context)\n    return 1\n", {}),
        },
        topics={"chain": {}},
    )
    server = Server(root / "data", env={"TRIGGERFISH_THROTTLE_WAIT": "0.2"})
    server.start("--deploy", str(manifest))
    server.counter_path = root / "counter.txt"  # type: ignore[attr-defined]
    yield server
    server.stop()


@pytest.fixture
def api(server: Server) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def test_sync_invoke_returns_the_handlers_result(api: httpx.Client) -> None:
    response = api.post("/v1/functions/echo/invoke", json={"hello": "world"})
    assert response.status_code == 200
    body = response.json()
    assert body["echo"] == {"hello": "world"}
    assert body["request"] == response.headers["x-triggerfish-invocation-id"]
    assert 0 < body["remaining"] <= 10_000
    assert "x-triggerfish-function-error" not in response.headers


def test_async_def_handlers_work(api: httpx.Client) -> None:
    assert api.post("/v1/functions/aecho/invoke", json={"n": 7}).json() == {"async": True, "n": 7}


def test_function_error_is_200_with_lambdas_error_shape(api: httpx.Client) -> None:
    response = api.post("/v1/functions/echo/invoke", json={"fail": True})
    assert response.status_code == 200
    assert response.headers["x-triggerfish-function-error"] == "Unhandled"
    error = response.json()
    assert error["errorType"] == "KeyError"
    assert "no such thing" in error["errorMessage"]
    assert any("handler" in line for line in error["stackTrace"])


def test_invocation_record_keeps_logs_with_lambda_lines(api: httpx.Client) -> None:
    response = api.post("/v1/functions/echo/invoke", json={"x": 1}, params={"log": "true"})
    tail = base64.b64decode(response.headers["x-triggerfish-log-result"]).decode()
    assert "got {'x': 1}" in tail
    invocation_id = response.headers["x-triggerfish-invocation-id"]

    def record() -> dict[str, object] | None:
        r = api.get(f"/v1/invocations/{invocation_id}")
        return r.json() if r.status_code == 200 else None

    full = wait_for(record, what="the invocation record")
    logs = str(full["logs"])
    assert logs.startswith(f"START RequestId: {invocation_id}")
    assert "got {'x': 1}" in logs
    assert "warned" in logs
    assert f"END RequestId: {invocation_id}" in logs
    assert "REPORT RequestId:" in logs
    assert "Billed Duration:" in logs
    assert full["status"] == "ok"
    assert full["memory_size_mb"] == 128


def test_emit_publishes_to_the_named_topic(api: httpx.Client) -> None:
    api.post("/v1/functions/echo/invoke", json={"emit": True})
    events = api.get("/v1/topics/chain/events").json()["events"]
    assert events[-1]["event"]["type"] == "echo.done"
    assert events[-1]["event"]["data"] == {"from": "echo"}


def test_async_invoke_is_accepted_then_retried_into_success(
    server: Server, api: httpx.Client
) -> None:
    response = api.post("/v1/functions/counter/invoke", params={"mode": "async"}, json={})
    assert response.status_code == 202
    path: Path = server.counter_path  # type: ignore[attr-defined]

    def statuses() -> list[str]:
        page = api.get("/v1/invocations", params={"function": "counter"}).json()
        return sorted(r["status"] for r in page["invocations"])

    assert wait_for(
        lambda: statuses() == ["error", "ok"] and statuses(),
        timeout=30,
        what="one failure then success",
    )
    assert len(path.read_text().split()) == 2


def test_concurrency_limit_gives_429_with_retry_after(api: httpx.Client, server: Server) -> None:
    def call(_: int) -> httpx.Response:
        with server.client() as c:
            return c.post("/v1/functions/sleepy/invoke", json={"sleep": 1.0})

    with ThreadPoolExecutor(3) as pool:
        responses = list(pool.map(call, range(3)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) >= 1
    throttled = [r for r in responses if r.status_code == 429]
    assert throttled, statuses
    assert int(throttled[0].headers["retry-after"]) >= 1
    assert throttled[0].headers["content-type"] == "application/problem+json"
    assert "concurrency limit" in throttled[0].json()["detail"]


def test_timeout_is_reported_and_the_function_keeps_working(api: httpx.Client) -> None:
    response = api.post("/v1/functions/sleepy/invoke", json={"sleep": 8})
    assert response.headers["x-triggerfish-status"] == "timeout"
    assert "timed out" in response.json()["errorMessage"]
    assert api.post("/v1/functions/sleepy/invoke", json={"sleep": 0}).json() == "slept"


@pytest.mark.parametrize(
    ("function", "error_type", "words"),
    [
        ("nohandler", "Runtime.HandlerNotFound", "handler"),
        ("broken", "Runtime.UserCodeSyntaxError", "main.py"),
    ],
)
def test_user_code_that_cannot_load_says_why(
    api: httpx.Client, function: str, error_type: str, words: str
) -> None:
    response = api.post(f"/v1/functions/{function}/invoke", json={})
    assert response.headers["x-triggerfish-function-error"] == "Unhandled"
    error = response.json()
    assert error["errorType"] == error_type
    assert words in error["errorMessage"]


def problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, object] = response.json()
    return body


def test_invalid_cloudevent_names_the_attribute(api: httpx.Client) -> None:
    response = api.post(
        "/v1/topics/chain/events",
        content=json.dumps({"specversion": "0.3", "id": "1", "source": "s", "type": "t"}),
        headers={"Content-Type": "application/cloudevents+json"},
    )
    body = problem(response, 400)
    assert "specversion" in str(body["detail"])
    events = api.get("/v1/topics/chain/events").json()["events"]
    assert all(e["event"]["id"] != "1" for e in events)


def test_unknown_topic_and_function_are_404(api: httpx.Client) -> None:
    body = problem(
        api.post(
            "/v1/topics/nope/events",
            json={},
            headers={"ce-id": "1", "ce-source": "s", "ce-type": "t", "ce-specversion": "1.0"},
        ),
        404,
    )
    assert "nope" in str(body["detail"])
    body = problem(api.post("/v1/functions/ghost/invoke", json={}), 404)
    assert "ghost" in str(body["detail"])


def test_payload_over_the_limits_is_413(api: httpx.Client) -> None:
    big = json.dumps({"blob": "x" * (6 * 1024 * 1024)})
    problem(api.post("/v1/functions/echo/invoke", content=big), 413)
    medium = json.dumps({"blob": "x" * (1024 * 1024 + 10)})
    body = problem(
        api.post("/v1/functions/echo/invoke", params={"mode": "async"}, content=medium), 413
    )
    assert "limit" in str(body["detail"])


def test_ingest_over_the_limit_is_413_and_stores_nothing(api: httpx.Client) -> None:
    before = api.get("/v1/topics/chain").json()
    event = {"specversion": "1.0", "id": "huge", "source": "t", "type": "big"}
    big = json.dumps({**event, "data": {"blob": "x" * (1024 * 1024 + 10)}})
    headers = {"content-type": "application/cloudevents+json"}
    body = problem(api.post("/v1/topics/chain/events", content=big, headers=headers), 413)
    assert "over the limit of 1048576 bytes" in str(body["detail"])
    assert api.get("/v1/topics/chain").json()["last_offset"] == before["last_offset"]


@pytest.mark.parametrize("header", [None, "Bearer tfk_wrong_token", "Basic abc"])
def test_ingest_needs_a_valid_token(server: Server, header: str | None) -> None:
    headers = {"content-type": "application/cloudevents+json"}
    if header:
        headers["Authorization"] = header
    event = {"specversion": "1.0", "id": "refused", "source": "t", "type": "x"}
    response = httpx.post(f"{server.url}/v1/topics/chain/events", json=event, headers=headers)
    problem(response, 401)
    with server.client() as api:
        stored = api.get("/v1/topics/chain/events").json()["events"]
    assert all(item["event"]["id"] != "refused" for item in stored)


@pytest.mark.parametrize("header", [None, "Bearer tfk_wrong_token", "Basic abc"])
def test_v1_needs_a_valid_token(server: Server, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    response = httpx.get(f"{server.url}/v1/functions", headers=headers)
    problem(response, 401)
    assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_malformed_manifest_names_file_and_key(server: Server, tmp_path: Path) -> None:
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "main.py").write_text("def handler(e, c):\n    return 1\n")
    (tmp_path / "triggerfish.yaml").write_text(
        "functions:\n  f:\n    handler: main.handler\n    code: ./f\n    memory: big\n"
    )
    result = server.cli("deploy", str(tmp_path))
    assert result.returncode == 2
    assert "triggerfish.yaml" in result.stderr
    assert "functions.f.memory" in result.stderr


def test_unchanged_code_deploys_nothing_new(server: Server, tmp_path: Path) -> None:
    manifest = write_project(tmp_path, {"same": ("def handler(e, c):\n    return 1\n", {})})
    first = json.loads(server.cli("deploy", str(manifest), "--json", check=True).stdout)
    second = json.loads(server.cli("deploy", str(manifest), "--json", check=True).stdout)
    assert first["functions"][0]["created"] is True
    assert second["functions"][0]["created"] is False
    assert second["functions"][0]["version"] == first["functions"][0]["version"]
    (tmp_path / "same" / "main.py").write_text("def handler(e, c):\n    return 2\n")
    third = json.loads(server.cli("deploy", str(manifest), "--json", check=True).stdout)
    assert third["functions"][0]["number"] == 2
    assert server.cli("invoke", "same", check=True).stdout.strip() == "2"
    assert (
        server.cli("invoke", f"same:{first['functions'][0]['version']}", check=True).stdout.strip()
        == "1"
    )


def test_cli_invoke_exit_code_says_the_function_failed(server: Server) -> None:
    result = server.cli("invoke", "echo", "--data", '{"fail": true}')
    assert result.returncode == 1
    assert "KeyError" in result.stdout


def test_invocations_filter_by_function_status_and_time(api: httpx.Client) -> None:
    since = time.time()
    api.post("/v1/functions/aecho/invoke", json={"n": 1})
    api.post("/v1/functions/echo/invoke", json={"fail": True})

    def page(**params: object) -> list[dict[str, object]]:
        return api.get("/v1/invocations", params={"since": since, **params}).json()["invocations"]

    wait_for(lambda: len(page()) >= 2, what="both records")
    assert {r["function"] for r in page(function="aecho")} == {"aecho"}
    assert {r["status"] for r in page(status="error")} == {"error"}
    older = api.get("/v1/invocations", params={"until": since}).json()["invocations"]
    assert older, "earlier tests in this module invoked functions before `since`"
    assert all(float(r["started_at"]) <= since for r in older)
