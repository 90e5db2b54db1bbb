"""Bucket triggers against a running server: an upload runs the function once with S3's
``{"Records": [...]}``, and the function reads the object back with its own credentials
(the AWS_* variables Triggerfish puts in its environment)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import boto3
import pytest
from botocore.client import BaseClient

from support.projects import write_project
from support.server import Server, wait_for
from support.services import in_ci

pytestmark = pytest.mark.e2e

# The mission's example handler, as it would run on AWS Lambda. It relies on nothing but
# the environment: AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION.
READ_BACK = """
import json, os
from urllib.parse import unquote_plus

import boto3

s3 = boto3.client("s3")

def handler(event, context):
    for record in event["Records"]:
        bucket = record["s3"]["bucket"]["name"]
        key = unquote_plus(record["s3"]["object"]["key"])
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        with open(os.environ["OUT"], "a") as out:
            out.write(json.dumps({
                "event": record["eventName"],
                "raw_key": record["s3"]["object"]["key"],
                "key": key,
                "size": record["s3"]["object"]["size"],
                "etag": record["s3"]["object"]["eTag"],
                "body": body.decode(),
                "key_id": os.environ["AWS_ACCESS_KEY_ID"],
            }) + "\\n")
"""
RECORD = """
import json, os

def handler(event, context):
    with open(os.environ["OUT"], "a") as out:
        out.write(json.dumps(event) + "\\n")
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("bucket-triggers")
    manifest = write_project(
        root / "project",
        {
            "thumbnail": (
                READ_BACK,
                {
                    "environment": {"OUT": str(root / "thumbnail.jsonl")},
                    "timeout": 30,
                    "triggers": [
                        {"bucket": {"name": "uploads", "prefix": "photos/", "suffix": ".jpg"}}
                    ],
                },
            ),
            "janitor": (
                RECORD,
                {
                    "environment": {"OUT": str(root / "janitor.jsonl")},
                    "triggers": [{"bucket": {"name": "uploads", "events": ["s3:ObjectRemoved:*"]}}],
                },
            ),
        },
    )
    server = Server(root / "data").start()
    server.root = root  # type: ignore[attr-defined]
    try:
        s3_ready(server)
        server.cli("deploy", str(manifest), check=True)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def s3(server: Server) -> BaseClient:
    result = server.cli("keys", "create", "--name", "uploader", "--json", check=True)
    key = json.loads(result.stdout)
    client: BaseClient = boto3.client(
        "s3",
        endpoint_url=server.url,
        aws_access_key_id=key["id"],
        aws_secret_access_key=key["secret"],
        region_name="us-east-1",
    )
    return client


def s3_ready(server: Server) -> None:
    """Skip (fail in CI) when this server does not serve the S3 API."""
    with server.client() as api:
        if api.get("/v1/keys").status_code == 404:
            message = "this server does not serve /v1/keys and the S3 API"
            if in_ci():
                pytest.fail(message)
            pytest.skip(message)


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_upload_runs_the_function_once_and_it_reads_the_object(
    server: Server, s3: BaseClient
) -> None:
    out = server.root / "thumbnail.jsonl"  # type: ignore[attr-defined]
    # The trigger made its bucket at deploy time.
    assert "uploads" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    put = s3.put_object(Bucket="uploads", Key="photos/my cat.jpg", Body=b"purr")
    s3.put_object(Bucket="uploads", Key="photos/skip.png", Body=b"not a jpg")
    s3.put_object(Bucket="uploads", Key="other/dog.jpg", Body=b"not under photos/")
    s3.put_object(Bucket="uploads", Key="photos/last.jpg", Body=b"barrier")
    wait_for(lambda: len(lines(out)) >= 2, timeout=60, what="two invocations")

    seen = {line["key"]: line for line in lines(out)}
    assert set(seen) == {"photos/my cat.jpg", "photos/last.jpg"}
    assert len(lines(out)) == 2  # once each, and nothing for the filtered keys
    cat = seen["photos/my cat.jpg"]
    assert cat["event"] == "ObjectCreated:Put"
    assert cat["raw_key"] == "photos/my+cat.jpg"
    assert unquote_plus(cat["raw_key"]) == "photos/my cat.jpg"
    assert cat["body"] == "purr"
    assert cat["size"] == 4
    assert f'"{cat["etag"]}"' == put["ETag"]
    assert cat["key_id"].startswith("TF")


def test_delete_reaches_a_trigger_on_removals(server: Server, s3: BaseClient) -> None:
    out = server.root / "janitor.jsonl"  # type: ignore[attr-defined]
    s3.put_object(Bucket="uploads", Key="tmp/old file.txt", Body=b"x")
    s3.delete_object(Bucket="uploads", Key="tmp/old file.txt")
    [event] = wait_for(lambda: lines(out), timeout=60, what="the removal event")
    [record] = event["Records"]
    assert record["eventName"] == "ObjectRemoved:Delete"
    assert record["eventSource"] == "aws:s3"
    assert record["s3"]["object"]["key"] == "tmp/old+file.txt"
    assert record["s3"]["bucket"]["name"] == "uploads"


def test_the_topic_holds_the_cloudevent(server: Server, s3: BaseClient) -> None:
    s3.put_object(Bucket="uploads", Key="notes/a b.txt", Body=b"hello")
    with server.client() as api:
        body = api.get("/v1/topics/_bucket.uploads/events", params={"limit": 1000}).json()
    events = [item["event"] for item in body["events"]]
    [event] = [e for e in events if e.get("subject") == "notes/a b.txt"]
    assert event["type"] == "com.amazonaws.s3.ObjectCreated:Put"
    assert event["source"] == "s3://uploads"
    assert event["data"]["Records"][0]["s3"]["object"]["key"] == "notes/a+b.txt"
