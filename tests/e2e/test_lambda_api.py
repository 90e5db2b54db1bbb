"""The Lambda API with boto3's ``lambda`` client against a running Triggerfish: invoke
(sync, async, dry run), function errors, log tails, qualifiers, throttling, look-ups,
and requests that are not signed as they should be."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from support.lambda_api import lambda_client, new_key
from support.projects import write_project
from support.server import Server, wait_for
from support.services import in_ci

pytestmark = pytest.mark.e2e

ECHO = """
import time

VERSION = {version}

def handler(event, context):
    print("echo got", event)
    if event.get("fail"):
        raise ValueError("asked to fail")
    if event.get("chatty"):
        print("x" * 10000)
        print("the last line")
    return {{"event": event, "v": VERSION, "request": context.aws_request_id}}
"""
SLOW = """
import time

def handler(event, context):
    time.sleep(event.get("sleep", 0))
    return "done"
"""


def lambda_ready(server: Server) -> None:
    """Skip (fail in CI) when this server does not serve the Lambda API."""
    with server.client() as api:
        reply = api.get("/2015-03-31/functions")
        if reply.status_code == 404 and "x-amzn-errortype" not in reply.headers:
            message = "this server does not serve the Lambda API (/2015-03-31)"
            if in_ci():
                pytest.fail(message)
            pytest.skip(message)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("lambda")
    server = Server(root / "data", env={"TRIGGERFISH_THROTTLE_WAIT": "0.2"}).start()
    try:
        lambda_ready(server)
        settings = {"max_concurrency": 4}
        slow = (SLOW, {"max_concurrency": 1, "timeout": 10})
        for version in (1, 2):
            manifest = write_project(
                root / "project", {"echo": (ECHO.format(version=version), settings), "slow": slow}
            )
            server.cli("deploy", str(manifest), check=True)
        server.cli("alias", "set", "echo", "stable", "1", check=True)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def client(server: Server) -> BaseClient:
    return lambda_client(server, new_key(server))


def payload_of(reply: dict[str, Any]) -> Any:
    return json.loads(reply["Payload"].read())


def test_sync_invoke_returns_the_result_and_the_executed_version(client: BaseClient) -> None:
    reply = client.invoke(FunctionName="echo", Payload=json.dumps({"hello": "lambda"}))
    assert reply["StatusCode"] == 200
    assert reply["ExecutedVersion"] == "2"
    assert "FunctionError" not in reply
    body = payload_of(reply)
    assert body["event"] == {"hello": "lambda"}
    assert body["v"] == 2
    assert body["request"] == reply["ResponseMetadata"]["RequestId"]


def test_function_error_is_200_with_unhandled_and_the_error_document(
    client: BaseClient,
) -> None:
    reply = client.invoke(FunctionName="echo", Payload=b'{"fail": true}')
    assert reply["StatusCode"] == 200
    assert reply["FunctionError"] == "Unhandled"
    error = payload_of(reply)
    assert error["errorType"] == "ValueError"
    assert error["errorMessage"] == "asked to fail"
    assert any("handler" in line for line in error["stackTrace"])


def test_log_tail_is_the_last_4_kb_of_the_log(client: BaseClient) -> None:
    reply = client.invoke(FunctionName="echo", Payload=b'{"chatty": true}', LogType="Tail")
    tail = base64.b64decode(reply["LogResult"])
    assert len(tail) == 4096
    text = tail.decode()
    assert "the last line" in text
    assert "REPORT RequestId:" in text
    assert "echo got" not in text  # it came before the last 4 KB
    assert "LogResult" not in client.invoke(FunctionName="echo", Payload=b"{}")


@pytest.mark.parametrize(
    ("name", "qualifier", "version"),
    [
        ("echo:stable", None, 1),
        ("echo", "stable", 1),
        ("echo:1", None, 1),
        ("echo", "2", 2),
        ("echo:live", None, 2),
        ("arn:aws:lambda:us-east-1:123456789012:function:echo:stable", None, 1),
        ("arn:aws:lambda:eu-west-3:000000000000:function:echo", None, 2),
        ("000000000000:function:echo:1", None, 1),
        ("echo", "$LATEST", 2),
    ],
)
def test_qualifiers_choose_the_version(
    client: BaseClient, name: str, qualifier: str | None, version: int
) -> None:
    extra = {"Qualifier": qualifier} if qualifier else {}
    reply = client.invoke(FunctionName=name, Payload=b"{}", **extra)
    assert payload_of(reply)["v"] == version
    expected = "$LATEST" if qualifier == "$LATEST" else str(version)
    assert reply["ExecutedVersion"] == expected


def test_a_version_id_is_a_qualifier_too(client: BaseClient) -> None:
    versions = client.list_versions_by_function(FunctionName="echo")["Versions"]
    first = next(v for v in versions if v["Version"] == "1")
    function = client.get_function(FunctionName="echo", Qualifier="1")["Configuration"]
    assert first["CodeSha256"] == function["CodeSha256"]
    version_id = base64.b64decode(first["CodeSha256"]).hex()[:12]
    reply = client.invoke(FunctionName=f"echo:{version_id}", Payload=b"{}")
    assert payload_of(reply)["v"] == 1
    assert reply["ExecutedVersion"] == "1"


def test_conflicting_qualifiers_are_refused(client: BaseClient) -> None:
    with pytest.raises(client.exceptions.InvalidParameterValueException):
        client.invoke(FunctionName="echo:1", Qualifier="2", Payload=b"{}")


def test_event_invocation_is_accepted_and_runs(server: Server, client: BaseClient) -> None:
    marker = f"async-{time.time_ns()}"
    reply = client.invoke(
        FunctionName="echo", InvocationType="Event", Payload=json.dumps({"marker": marker})
    )
    assert reply["StatusCode"] == 202
    assert reply["Payload"].read() == b""

    def ran() -> bool:
        with server.client() as api:
            found = api.get("/v1/invocations", params={"function": "echo", "logs": "true"})
        return any(marker in str(item.get("logs", "")) for item in found.json()["invocations"])

    wait_for(ran, what="the Event invocation to run")


def test_dry_run_checks_without_running(client: BaseClient) -> None:
    reply = client.invoke(FunctionName="echo", InvocationType="DryRun")
    assert reply["StatusCode"] == 204
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.invoke(FunctionName="echo:9", InvocationType="DryRun")


def test_unknown_function_and_version_are_resource_not_found(client: BaseClient) -> None:
    with pytest.raises(client.exceptions.ResourceNotFoundException) as caught:
        client.invoke(FunctionName="no-such-function", Payload=b"{}")
    assert "no-such-function" in caught.value.response["Error"]["Message"]
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.invoke(FunctionName="echo", Qualifier="nightly", Payload=b"{}")
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_function(FunctionName="no-such-function")


def test_invalid_json_payload_is_invalid_request_content(client: BaseClient) -> None:
    with pytest.raises(client.exceptions.InvalidRequestContentException) as caught:
        client.invoke(FunctionName="echo", Payload=b"{not json")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_a_payload_over_the_limit_is_request_too_large(client: BaseClient) -> None:
    big = json.dumps({"blob": "x" * (6 * 1024 * 1024)}).encode()
    with pytest.raises(client.exceptions.RequestTooLargeException) as caught:
        client.invoke(FunctionName="echo", Payload=big)
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413


def test_a_function_at_its_limit_is_too_many_requests(server: Server, client: BaseClient) -> None:
    other = lambda_client(server, new_key(server))
    started = threading.Event()
    outcome: list[Any] = []

    def hold_the_only_slot() -> None:
        started.set()
        outcome.append(payload_of(other.invoke(FunctionName="slow", Payload=b'{"sleep": 3}')))

    holder = threading.Thread(target=hold_the_only_slot)
    holder.start()
    started.wait()

    def throttled() -> ClientError | None:
        try:
            client.invoke(FunctionName="slow", Payload=b"{}")
        except client.exceptions.TooManyRequestsException as exc:
            return exc
        return None

    try:
        error = wait_for(throttled, timeout=10, interval=0.05, what="a throttled invoke")
    finally:
        holder.join()
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert error.response["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    assert int(error.response["retryAfterSeconds"]) >= 1
    assert outcome == ["done"]


def test_wrong_secret_and_unknown_key_are_refused(server: Server) -> None:
    key_id, secret = new_key(server)
    wrong = lambda_client(server, (key_id, secret[::-1]))
    with pytest.raises(ClientError) as caught:
        wrong.invoke(FunctionName="echo", Payload=b"{}")
    assert caught.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    unknown = lambda_client(server, ("TF" + "A" * 18, secret))
    with pytest.raises(ClientError) as caught:
        unknown.list_functions()
    assert caught.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_a_revoked_key_no_longer_signs(server: Server) -> None:
    key = new_key(server)
    revoked = lambda_client(server, key)
    assert revoked.invoke(FunctionName="echo", Payload=b"{}")["StatusCode"] == 200
    server.cli("keys", "revoke", key[0], check=True)
    with pytest.raises(ClientError) as caught:
        revoked.invoke(FunctionName="echo", Payload=b"{}")
    assert caught.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_unsigned_requests_are_refused_and_bearer_tokens_accepted(server: Server) -> None:
    path = "/2015-03-31/functions/echo/invocations"
    unsigned = httpx.post(f"{server.url}{path}", content=b"{}")
    assert unsigned.status_code == 403
    assert unsigned.headers["x-amzn-errortype"] == "MissingAuthenticationTokenException"
    assert "keys create" in unsigned.json()["message"]
    with server.client() as api:
        reply = api.post(path, content=b'{"via": "curl"}', headers={"X-Amz-Log-Type": "Tail"})
    assert reply.status_code == 200
    assert reply.json()["event"] == {"via": "curl"}
    assert reply.headers["x-amz-executed-version"] == "2"
    assert "echo got" in base64.b64decode(reply.headers["x-amz-log-result"]).decode()
    bad_token = httpx.post(
        f"{server.url}{path}", content=b"{}", headers={"Authorization": "Bearer nope"}
    )
    assert bad_token.status_code == 403
    assert bad_token.headers["x-amzn-errortype"] == "UnrecognizedClientException"


def test_get_function_describes_a_version(client: BaseClient) -> None:
    found = client.get_function(FunctionName="echo")
    config = found["Configuration"]
    assert config["FunctionName"] == "echo"
    assert config["FunctionArn"].endswith(":function:echo")
    assert config["Version"] == "2"
    assert config["Handler"] == "main.handler"
    assert config["Runtime"] == "python"
    assert config["MemorySize"] == 128
    assert config["Timeout"] == 10
    assert config["State"] == "Active"
    assert config["CodeSize"] > 0
    assert len(base64.b64decode(config["CodeSha256"])) == 32
    assert found["Concurrency"]["ReservedConcurrentExecutions"] == 4
    stable = client.get_function(FunctionName="echo", Qualifier="stable")["Configuration"]
    assert stable["Version"] == "1"
    assert stable["FunctionArn"].endswith(":function:echo:stable")
    assert stable["CodeSha256"] != config["CodeSha256"]


def test_list_functions_pages_with_marker_and_max_items(client: BaseClient) -> None:
    first = client.list_functions(MaxItems=1)
    assert [f["FunctionName"] for f in first["Functions"]] == ["echo"]
    second = client.list_functions(MaxItems=1, Marker=first["NextMarker"])
    assert [f["FunctionName"] for f in second["Functions"]] == ["slow"]
    assert "NextMarker" not in second
    names = [
        f["FunctionName"]
        for page in client.get_paginator("list_functions").paginate(
            PaginationConfig={"PageSize": 1}
        )
        for f in page["Functions"]
    ]
    assert names == ["echo", "slow"]
    every = client.list_functions(FunctionVersion="ALL")["Functions"]
    assert [(f["FunctionName"], f["Version"]) for f in every] == [
        ("echo", "$LATEST"),
        ("echo", "1"),
        ("echo", "2"),
        ("slow", "$LATEST"),
        ("slow", "1"),
    ]


def test_list_versions_by_function(client: BaseClient) -> None:
    versions = client.list_versions_by_function(FunctionName="echo")["Versions"]
    assert [v["Version"] for v in versions] == ["$LATEST", "1", "2"]
    assert versions[1]["FunctionArn"].endswith(":function:echo:1")
    page = client.list_versions_by_function(FunctionName="echo", MaxItems=2)
    assert [v["Version"] for v in page["Versions"]] == ["$LATEST", "1"]
    rest = client.list_versions_by_function(FunctionName="echo", Marker=page["NextMarker"])
    assert [v["Version"] for v in rest["Versions"]] == ["2"]
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.list_versions_by_function(FunctionName="no-such-function")
