"""Structured logs: the server's own lines as JSON (`up --log-format json`), and a
function's logs in Lambda's JSON format (`logging: {format: json}` in its manifest)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from support.projects import write_project
from support.server import Server, wait_for

pytestmark = pytest.mark.e2e

SOURCE = """
import logging

log = logging.getLogger("orders")


def handler(event, context):
    log.debug("not shown at INFO")
    log.info("checking order %s", event["id"], extra={"order": event["id"]})
    if event.get("fail"):
        raise ValueError("no such order")
    print("a plain print")
    return {"ok": True}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("json-logs")
    manifest = write_project(
        root / "project",
        {
            "shop": (SOURCE, {"logging": {"format": "json", "level": "INFO"}}),
            "quiet": (SOURCE, {"logging": {"format": "json", "system_level": "WARN"}}),
        },
    )
    server = Server(root / "data").start("--deploy", str(manifest), "--log-format", "json")
    yield server
    server.stop()


def invoke(server: Server, function: str, payload: dict[str, Any]) -> list[str]:
    with server.client() as api:
        response = api.post(f"/v1/functions/{function}/invoke", json=payload)
        request_id = response.headers["x-triggerfish-invocation-id"]

    def record() -> dict[str, Any] | None:
        with server.client() as api:
            found = api.get(f"/v1/invocations/{request_id}")
        return found.json() if found.status_code == 200 else None

    logs = wait_for(record, what=f"the record of {request_id}")["logs"]
    return [line for line in logs.splitlines() if line]


def test_the_server_writes_its_own_lines_as_json_objects(server: Server) -> None:
    records = [json.loads(line) for line in server.output().splitlines() if line.startswith("{")]
    assert records, server.output()
    for record in records:
        assert {"timestamp", "level", "logger", "message"} <= set(record)
        assert record["timestamp"].endswith("Z")
    assert any(r["logger"].startswith("triggerfish") for r in records)


def test_a_function_logs_lambda_json_records(server: Server) -> None:
    lines = invoke(server, "shop", {"id": "A-1"})

    records = [json.loads(line) for line in lines if line.startswith("{")]
    kinds = [r.get("type") for r in records if "type" in r]
    assert kinds == ["platform.start", "platform.runtimeDone", "platform.report"]
    request_id = records[0]["record"]["requestId"]
    (app,) = [r for r in records if r.get("logger") == "orders"]
    assert app["level"] == "INFO"
    assert app["message"] == "checking order A-1"
    assert app["requestId"] == request_id
    assert app["order"] == "A-1"
    report = records[-1]["record"]
    assert report["status"] == "success"
    assert {"durationMs", "billedDurationMs", "memorySizeMB", "maxMemoryUsedMB"} <= set(
        report["metrics"]
    )
    assert "not shown at INFO" not in "\n".join(lines)
    assert "a plain print" in lines  # print stays text, as on Lambda


def test_a_failure_is_an_error_record(server: Server) -> None:
    lines = invoke(server, "shop", {"id": "B-2", "fail": True})

    records = [json.loads(line) for line in lines if line.startswith("{")]
    (error,) = [r for r in records if r.get("level") == "ERROR"]
    assert (error["errorType"], error["errorMessage"]) == ("ValueError", "no such order")
    assert error["stackTrace"]
    assert records[-1]["record"]["status"] == "error"


def test_system_level_warn_leaves_out_the_platform_records(server: Server) -> None:
    lines = invoke(server, "quiet", {"id": "C-3"})

    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert [r.get("message") for r in records] == ["checking order C-3"]
