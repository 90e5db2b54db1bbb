"""Structured logs: the server's own lines as JSON (`up --log-format json`), and a
function's logs in Lambda's JSON format (`logging: {format: json}` in its manifest), in
Python and Node.js, including the lines the platform writes for an environment that
timed out."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

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

SLOW = """
import logging
import time


def handler(event, context):
    logging.getLogger("slow").info("working on %s", event["id"])
    time.sleep(30)
"""

NODE = """
exports.handler = async (event) => {
  console.debug('not shown at INFO');
  console.log('checking order %s', event.id);
  console.warn('stock of %s is %d', event.id, 3);
  console.error('a problem with', event.id, new RangeError('out of range'));
  if (event.fail) throw new TypeError('no such order');
  process.stdout.write('a plain write\\n');
  return { ok: true };
};
"""


def add_node_functions(manifest: Path, functions: dict[str, dict[str, Any]]) -> None:
    """Node.js functions (``index.handler``, the code of ``NODE``) beside the others."""
    document = yaml.safe_load(manifest.read_text())
    for name, settings in functions.items():
        code = manifest.parent / name
        code.mkdir()
        (code / "index.js").write_text(NODE)
        document["functions"][name] = {
            "handler": "index.handler",
            "code": f"./{name}",
            "runtime": "nodejs",
            **settings,
        }
    manifest.write_text(yaml.safe_dump(document, sort_keys=False))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("json-logs")
    manifest = write_project(
        root / "project",
        {
            "shop": (SOURCE, {"logging": {"format": "json", "level": "INFO"}}),
            "quiet": (SOURCE, {"logging": {"format": "json", "system_level": "WARN"}}),
            "slow": (SLOW, {"timeout": 1, "logging": {"format": "json"}}),
        },
    )
    add_node_functions(
        manifest,
        {
            "shop-js": {"logging": {"format": "json", "level": "INFO"}},
            "strict-js": {"logging": {"format": "json", "level": "ERROR", "system_level": "WARN"}},
            "text-js": {},
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


def parsed(lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines if line.startswith("{")]


def test_a_nodejs_function_logs_one_json_record_a_console_call(server: Server) -> None:
    lines = invoke(server, "shop-js", {"id": "D-4"})

    records = parsed(lines)
    platform = [r for r in records if "type" in r]
    assert [r["type"] for r in platform] == [
        "platform.start",
        "platform.runtimeDone",
        "platform.report",
    ]
    request_id = platform[0]["record"]["requestId"]
    assert platform[0]["record"]["version"]
    assert platform[1]["record"] == {"requestId": request_id, "status": "success"}
    report = platform[2]["record"]
    assert report["status"] == "success"
    assert {"durationMs", "billedDurationMs", "memorySizeMB", "maxMemoryUsedMB"} <= set(
        report["metrics"]
    )
    assert "initDurationMs" in report["metrics"]  # the first call is a cold start
    app = [r for r in records if "level" in r]
    assert [(r["level"], r["message"].splitlines()[0]) for r in app] == [
        ("INFO", "checking order D-4"),
        ("WARN", "stock of D-4 is 3"),
        ("ERROR", "a problem with D-4 RangeError: out of range"),
    ]
    for record in app:
        assert record["requestId"] == request_id
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["timestamp"])
    problem = app[-1]
    assert (problem["errorType"], problem["errorMessage"]) == ("RangeError", "out of range")
    assert problem["stackTrace"][0] == "RangeError: out of range"
    assert "not shown at INFO" not in "\n".join(lines)
    assert "a plain write" in lines  # what the function writes itself stays as written


def test_a_nodejs_failure_is_an_error_record(server: Server) -> None:
    lines = invoke(server, "shop-js", {"id": "E-5", "fail": True})

    records = parsed(lines)
    (error,) = [r for r in records if r.get("errorType") == "TypeError"]
    assert error["level"] == "ERROR"
    assert error["errorMessage"] == "no such order"
    assert error["stackTrace"][0] == "TypeError: no such order"
    assert error["requestId"] == records[0]["record"]["requestId"]
    done, report = records[-2:]
    assert (done["type"], done["record"]["status"]) == ("platform.runtimeDone", "error")
    assert (report["type"], report["record"]["status"]) == ("platform.report", "error")
    assert "initDurationMs" not in report["record"]["metrics"]  # warm by now


def test_nodejs_levels_leave_out_records_under_them(server: Server) -> None:
    lines = invoke(server, "strict-js", {"id": "F-6"})

    (problem,) = parsed(lines)  # ERROR only, and no platform records under WARN
    assert problem["level"] == "ERROR"
    assert problem["message"].startswith("a problem with F-6 RangeError: out of range")
    assert problem["errorType"] == "RangeError"
    assert lines[1:] == ["a plain write"]


def test_a_nodejs_function_in_text_format_writes_plain_lines(server: Server) -> None:
    lines = invoke(server, "text-js", {"id": "G-7"})

    assert not [line for line in lines if line.startswith("{")]
    assert lines[0].startswith("START RequestId: ")
    request_id = lines[0].split()[2]
    # Levels apply to the JSON format only, as on Lambda: the DEBUG line is there.
    assert lines[1].endswith(f"\t{request_id}\tDEBUG\tnot shown at INFO")
    assert lines[2].endswith(f"\t{request_id}\tINFO\tchecking order G-7")
    assert lines[3].endswith(f"\t{request_id}\tWARN\tstock of G-7 is 3")
    assert "a plain write" in lines
    assert lines[-2] == f"END RequestId: {request_id}"
    assert lines[-1].startswith(f"REPORT RequestId: {request_id}\tDuration: ")


def test_a_timeout_writes_json_platform_records_and_an_error_record(server: Server) -> None:
    lines = invoke(server, "slow", {"id": "H-8"})

    records = parsed(lines)
    assert len(records) == len(lines), lines  # every line the platform wrote is JSON
    kinds = [r.get("type") or r.get("level") for r in records]
    assert kinds == ["platform.start", "INFO", "ERROR", "platform.runtimeDone", "platform.report"]
    start, working, error, done, report = records
    request_id = start["record"]["requestId"]
    assert working["message"] == "working on H-8"
    assert error["errorType"] == "Sandbox.Timedout"
    assert error["errorMessage"] == "Task timed out after 1.00 seconds"
    assert error["requestId"] == request_id
    assert done["record"] == {"requestId": request_id, "status": "timeout"}
    assert report["record"]["status"] == "timeout"
    assert report["record"]["metrics"]["durationMs"] >= 1000
