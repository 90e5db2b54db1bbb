"""``@idempotent`` on a real node: a function's side effect (an object written to a
bucket) happens once per key however many times it is invoked, a second call gets the
first call's result, a failed call lets the next one run, and one function never sees
another's records."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from botocore.client import BaseClient

from support.lambda_api import new_key
from support.projects import write_project
from support.s3 import s3_client
from support.server import Server

pytestmark = pytest.mark.e2e

# Writes one object per run under the order's key, and says which invocation ran.
PAY = """
import os

import boto3

from triggerfish import idempotent

s3 = boto3.client("s3")


@idempotent(key="order", expires=600)
def handler(event, context):
    if event.get("fail"):
        raise RuntimeError("the payment service is down")
    s3.put_object(Bucket="ledger", Key=f"{event['order']}/{context.aws_request_id}", Body=b"")
    return {"function": context.function_name, "run": context.aws_request_id}
"""

SETTINGS = {"timeout": 30, "permissions": {"buckets": {"write": ["ledger"]}}}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("idempotency")
    manifest = write_project(root / "project", {"pay": (PAY, SETTINGS), "peek": (PAY, SETTINGS)})
    server = Server(root / "data").start("--deploy", str(manifest))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def s3(server: Server) -> BaseClient:
    client = s3_client(server, new_key(server, "ledger"))
    client.create_bucket(Bucket="ledger")
    return client


@pytest.fixture(scope="module")
def api(server: Server) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def invoke(api: httpx.Client, function: str, payload: dict[str, Any]) -> httpx.Response:
    return api.post(f"/v1/functions/{function}/invoke", json=payload)


def runs(s3: BaseClient, order: str) -> list[str]:
    listed = s3.list_objects_v2(Bucket="ledger", Prefix=f"{order}/")
    return [item["Key"] for item in listed.get("Contents", [])]


def test_a_second_call_with_the_same_key_returns_the_first_result(
    api: httpx.Client, s3: BaseClient
) -> None:
    first = invoke(api, "pay", {"order": "A-1"})
    assert first.headers["x-triggerfish-status"] == "ok", first.text
    second = invoke(api, "pay", {"order": "A-1", "note": "a redelivery"})
    assert second.headers["x-triggerfish-status"] == "ok", second.text

    assert second.json() == first.json()
    assert first.json()["run"] == first.headers["x-triggerfish-invocation-id"]
    assert runs(s3, "A-1") == [f"A-1/{first.json()['run']}"]
    # Another key runs.
    other = invoke(api, "pay", {"order": "A-2"})
    assert other.json()["run"] != first.json()["run"]
    assert len(runs(s3, "A-2")) == 1


def test_a_failed_call_releases_its_key_so_the_next_one_runs(
    api: httpx.Client, s3: BaseClient
) -> None:
    failed = invoke(api, "pay", {"order": "B-1", "fail": True})
    assert failed.headers["x-triggerfish-function-error"] == "Unhandled"
    assert "payment service is down" in failed.text
    assert runs(s3, "B-1") == []

    retried = invoke(api, "pay", {"order": "B-1"})
    assert retried.headers["x-triggerfish-status"] == "ok", retried.text
    again = invoke(api, "pay", {"order": "B-1"})
    assert again.json() == retried.json()
    assert runs(s3, "B-1") == [f"B-1/{retried.json()['run']}"]


def test_a_function_never_sees_another_functions_records(api: httpx.Client, s3: BaseClient) -> None:
    paid = invoke(api, "pay", {"order": "C-1"})
    # The same code under another name, with the same key: its own record, its own run.
    peeked = invoke(api, "peek", {"order": "C-1"})
    assert peeked.headers["x-triggerfish-status"] == "ok", peeked.text
    assert paid.json()["function"] == "pay"
    assert peeked.json()["function"] == "peek"
    assert len(runs(s3, "C-1")) == 2
    assert invoke(api, "peek", {"order": "C-1"}).json() == peeked.json()
