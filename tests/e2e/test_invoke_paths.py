"""The synchronous invoke paths as callers see them: Lambda's ``ClientContext`` reaching
the handler, the native invoke answered in front of the router and by the route alike,
and invocation records that the CLI reads back, also after a kill -9."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from support.lambda_api import lambda_client, new_key
from support.projects import write_project
from support.server import Server, wait_for

pytestmark = pytest.mark.e2e

CONTEXT = """
def handler(event, context):
    cc = context.client_context
    if event.get("fail"):
        raise ValueError("asked to fail")
    if cc is None:
        return {"client_context": None}
    client = cc.client
    return {
        "custom": cc.custom,
        "env": cc.env,
        "installation_id": client.installation_id if client else None,
        "app_title": client.app_title if client else None,
    }
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("invoke-paths")
    manifest = write_project(root / "project", {"ctx": (CONTEXT, {"max_concurrency": 2})})
    server = Server(root / "data").start("--deploy", str(manifest))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def lambda_(server: Server) -> BaseClient:
    return lambda_client(server, new_key(server))


@pytest.fixture
def api(server: Server) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def encoded(fields: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(fields).encode()).decode()


def test_boto3_client_context_reaches_the_handler(lambda_: BaseClient) -> None:
    context = {
        "custom": {"tenant": "acme", "tier": 3},
        "env": {"platform": "linux", "locale": "fr_FR"},
        "client": {"installation_id": "inst-1", "app_title": "Shop"},
    }
    reply = lambda_.invoke(FunctionName="ctx", Payload=b"{}", ClientContext=encoded(context))
    assert reply["StatusCode"] == 200
    assert json.loads(reply["Payload"].read()) == {
        "custom": {"tenant": "acme", "tier": 3},
        "env": {"platform": "linux", "locale": "fr_FR"},
        "installation_id": "inst-1",
        "app_title": "Shop",
    }
    plain = lambda_.invoke(FunctionName="ctx", Payload=b"{}")
    assert json.loads(plain["Payload"].read()) == {"client_context": None}


@pytest.mark.parametrize(
    ("header", "says"),
    [
        ("not base64!", "base64-encoded JSON object"),
        (base64.b64encode(b"[1, 2]").decode(), "base64-encoded JSON object"),
        (encoded({"custom": {"pad": "x" * 3000}}), "the limit is 3583 bytes"),
    ],
)
def test_a_bad_client_context_is_refused_with_the_reason(
    lambda_: BaseClient, header: str, says: str
) -> None:
    with pytest.raises(ClientError) as caught:
        lambda_.invoke(FunctionName="ctx", Payload=b"{}", ClientContext=header)
    assert caught.value.response["Error"]["Code"] == "InvalidRequestContentException"
    assert says in caught.value.response["Error"]["Message"]


def test_native_invoke_answers_with_result_version_and_log(api: httpx.Client) -> None:
    [version] = [f["version"] for f in api.get("/v1/functions").json()["functions"]]
    reply = api.post("/v1/functions/ctx/invoke", json={}, params={"log": "yes"})
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/json"
    assert reply.json() == {"client_context": None}
    assert reply.headers["x-triggerfish-status"] == "ok"
    assert reply.headers["x-triggerfish-executed-version"] == version
    assert float(reply.headers["x-triggerfish-duration-ms"]) >= 0
    tail = base64.b64decode(reply.headers["x-triggerfish-log-result"]).decode()
    assert "REPORT RequestId: " + reply.headers["x-triggerfish-invocation-id"] in tail
    failed = api.post("/v1/functions/ctx/invoke", json={"fail": True}, params={"qualifier": "live"})
    assert failed.status_code == 200
    assert failed.headers["x-triggerfish-function-error"] == "Unhandled"
    assert failed.json()["errorType"] == "ValueError"


def test_native_invoke_refusals_are_problems_that_say_what_to_fix(
    api: httpx.Client, server: Server
) -> None:
    missing = api.post("/v1/functions/nope/invoke", json={})
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert "nope" in missing.json()["detail"]
    not_json = api.post("/v1/functions/ctx/invoke", content=b"{oops")
    assert not_json.status_code == 400
    assert not_json.json()["field"] == "payload"
    bad_flag = api.post("/v1/functions/ctx/invoke", json={}, params={"log": "maybe"})
    assert bad_flag.status_code == 400
    assert "log" in bad_flag.json()["detail"]
    with httpx.Client(base_url=server.url) as anonymous:
        refused = anonymous.post(
            "/v1/functions/ctx/invoke", json={}, headers={"Authorization": "Bearer tfk_nope"}
        )
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith("Bearer")
    assert "malformed API token" in refused.json()["detail"]


def test_native_async_mode_is_still_accepted(api: httpx.Client) -> None:
    reply = api.post("/v1/functions/ctx/invoke", json={}, params={"mode": "async"})
    assert reply.status_code == 202
    assert reply.json()["function"] == "ctx"


def listed(server: Server, function: str) -> list[dict[str, Any]]:
    out = server.cli("invocations", "--function", function, "--limit", "500", "--json")
    assert out.returncode == 0, out.stderr
    rows: list[dict[str, Any]] = json.loads(out.stdout)
    return rows


def test_records_of_fast_invokes_survive_a_kill_9(tmp_path: Path) -> None:
    manifest = write_project(tmp_path / "project", {"ctx": (CONTEXT, {"max_concurrency": 2})})
    server = Server(tmp_path / "data").start("--deploy", str(manifest))
    try:
        with server.client() as api:
            ids = {
                api.post("/v1/functions/ctx/invoke", json={"n": n}).headers[
                    "x-triggerfish-invocation-id"
                ]
                for n in range(50)
            }
        # Records are written within the recorder's interval (0.2 s) of the answer.
        time.sleep(1.0)
        server.kill9()
        server.start()
        rows = listed(server, "ctx")
        assert ids <= {row["id"] for row in rows}
        assert {row["status"] for row in rows if row["id"] in ids} == {"ok"}
        some = next(iter(ids))
        logs = server.cli("logs", "ctx", "--limit", "100")
        assert logs.returncode == 0, logs.stderr
        assert some in logs.stdout
    finally:
        server.stop()


def test_records_follow_invocations_in_order(server: Server, api: httpx.Client) -> None:
    since = time.time()
    for n in range(20):
        api.post("/v1/functions/ctx/invoke", json={"n": n})

    def page() -> list[dict[str, Any]] | None:
        rows = api.get("/v1/invocations", params={"function": "ctx", "since": since}).json()
        return rows["invocations"] if len(rows["invocations"]) >= 20 else None

    rows = wait_for(page, what="20 records")
    assert [row["id"] for row in rows] == sorted((row["id"] for row in rows), reverse=True)
