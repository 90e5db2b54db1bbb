"""AWS producers against a running server, with boto3 as AWS code uses it: EventBridge
``put_events`` and SQS ``send_message`` land on topics and run the functions of their
triggers with the shapes AWS delivers, and a bucket trigger with ``event_format:
eventbridge`` gets S3's EventBridge events, filtered by a rule written for AWS."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from support.lambda_api import aws_client
from support.projects import write_project
from support.server import Server, wait_for

pytestmark = pytest.mark.e2e

RECORD = """
import json, os

def handler(event, context):
    with open(os.environ["OUT"], "a") as out:
        out.write(json.dumps(event) + "\\n")
"""
ORDER_RULE = {
    "source": ["shop"],
    "detail-type": ["Order Placed"],
    "detail": {"total": [{"numeric": [">", 10]}]},
}
S3_RULE = {
    "source": ["aws.s3"],
    "detail-type": ["Object Created", "Object Deleted"],
    "detail": {"bucket": {"name": ["photos"]}, "object": {"key": [{"prefix": "in/"}]}},
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("aws-producers")

    def recorder(name: str, trigger: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return RECORD, {"environment": {"OUT": str(root / f"{name}.jsonl")}, "triggers": [trigger]}

    manifest = write_project(
        root / "project",
        {
            "orders": recorder(
                "orders", {"topic": "orders", "event_format": "eventbridge", "pattern": ORDER_RULE}
            ),
            "jobs": recorder("jobs", {"topic": "jobs", "event_format": "sqs"}),
            "photos": recorder(
                "photos",
                {
                    "bucket": {
                        "name": "photos",
                        "events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
                    },
                    "event_format": "eventbridge",
                    "pattern": S3_RULE,
                },
            ),
        },
        topics={"orders": {}, "jobs": {}, "default": {}},
    )
    server = Server(root / "data").start("--deploy", str(manifest))
    server.root = root  # type: ignore[attr-defined]
    yield server
    server.stop()


def client(server: Server, service: str, *key_options: str) -> BaseClient:
    return aws_client(server, service, *key_options)


@pytest.fixture(scope="module")
def events(server: Server) -> BaseClient:
    # May publish to orders only: the default bus is refused.
    return client(server, "events", "--scope", "publish", "--topic", "orders")


@pytest.fixture(scope="module")
def sqs(server: Server) -> BaseClient:
    return client(server, "sqs", "--scope", "publish", "--topic", "jobs")


def lines(server: Server, name: str) -> list[dict[str, Any]]:
    path: Path = server.root / f"{name}.jsonl"  # type: ignore[attr-defined]
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_put_events_runs_the_rule_with_eventbridge_envelope(
    server: Server, events: BaseClient
) -> None:
    when = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
    answer = events.put_events(
        Entries=[
            {
                "EventBusName": "orders",
                "Source": "shop",
                "DetailType": "Order Placed",
                "Detail": json.dumps({"id": "A-1", "total": 25}),
                "Resources": ["arn:shop:order/A-1", "arn:shop:customer/ada"],
                "Time": when,
            },
            {  # the rule wants totals above 10
                "EventBusName": "orders",
                "Source": "shop",
                "DetailType": "Order Placed",
                "Detail": json.dumps({"id": "A-2", "total": 5}),
            },
            {"EventBusName": "orders", "Source": "shop", "DetailType": "x", "Detail": "[1"},
            {"Source": "shop", "DetailType": "Order Placed", "Detail": "{}"},  # default bus
        ]
    )
    entries = answer["Entries"]
    assert answer["FailedEntryCount"] == 2
    assert "EventId" in entries[0]
    assert "EventId" in entries[1]
    assert entries[2]["ErrorCode"] == "MalformedDetail"
    assert entries[3]["ErrorCode"] == "AccessDeniedException"
    seen = wait_for(lambda: lines(server, "orders"), what="the order rule to run")
    event = seen[0]
    assert event["id"] == entries[0]["EventId"]
    assert event["source"] == "shop"
    assert event["detail-type"] == "Order Placed"
    assert event["detail"] == {"id": "A-1", "total": 25}
    assert event["resources"] == ["arn:shop:order/A-1", "arn:shop:customer/ada"]
    assert event["time"] == "2025-03-01T12:00:00Z"
    assert {"version", "account", "region"} <= event.keys()


def test_put_events_refuses_more_than_ten_entries(events: BaseClient) -> None:
    entry = {"EventBusName": "orders", "Source": "shop", "DetailType": "t", "Detail": "{}"}
    with pytest.raises(ClientError) as caught:
        events.put_events(Entries=[entry] * 11)
    assert caught.value.response["Error"]["Code"] == "ValidationException"


def test_put_events_to_a_bus_without_a_topic_fails_that_entry(server: Server) -> None:
    admin = client(server, "events")
    answer = admin.put_events(
        Entries=[{"EventBusName": "nowhere", "Source": "s", "DetailType": "t", "Detail": "{}"}]
    )
    assert answer["FailedEntryCount"] == 1
    assert answer["Entries"][0]["ErrorCode"] == "ResourceNotFoundException"


def test_send_message_runs_the_function_with_the_sqs_record(
    server: Server, sqs: BaseClient
) -> None:
    url = sqs.get_queue_url(QueueName="jobs")["QueueUrl"]
    assert url.endswith("/jobs")
    body = "resize photo 17"
    attributes = {
        "priority": {"DataType": "Number", "StringValue": "3"},
        "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
    }
    sent = sqs.send_message(
        QueueUrl=url,
        MessageBody=body,
        MessageAttributes=attributes,
        MessageGroupId="g1",
        MessageDeduplicationId="job-17",
    )
    assert sent["MD5OfMessageBody"] == hashlib.md5(body.encode()).hexdigest()
    assert len(sent["MD5OfMessageAttributes"]) == 32
    again = sqs.send_message(
        QueueUrl=url, MessageBody=body, MessageDeduplicationId="job-17", MessageGroupId="g1"
    )
    assert again["MessageId"] == sent["MessageId"]  # a duplicate within the window
    batch = sqs.send_message_batch(
        QueueUrl=url,
        Entries=[{"Id": "a", "MessageBody": "job a"}, {"Id": "b", "MessageBody": ""}],
    )
    assert [s["Id"] for s in batch["Successful"]] == ["a"]
    assert [f["Id"] for f in batch["Failed"]] == ["b"]

    seen = wait_for(lambda: len(lines(server, "jobs")) >= 2 and lines(server, "jobs"), what="jobs")
    records = [r for event in seen for r in event["Records"]]
    # Two invocations that may run side by side: no order between them is promised.
    assert sorted(r["body"] for r in records) == sorted([body, "job a"])
    [first] = [r for r in records if r["body"] == body]
    assert first["messageId"] == sent["MessageId"]
    assert first["md5OfBody"] == sent["MD5OfMessageBody"]
    assert first["md5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]
    assert first["eventSource"] == "aws:sqs"
    assert first["eventSourceARN"].endswith(":jobs")
    assert first["attributes"]["MessageGroupId"] == "g1"
    assert first["attributes"]["MessageDeduplicationId"] == "job-17"
    assert first["messageAttributes"]["priority"]["stringValue"] == "3"
    assert first["messageAttributes"]["priority"]["dataType"] == "Number"
    assert first["messageAttributes"]["blob"]["binaryValue"] == "AAE="


def test_a_queue_without_a_topic_is_queue_does_not_exist(server: Server, sqs: BaseClient) -> None:
    admin = client(server, "sqs")
    with pytest.raises(admin.exceptions.QueueDoesNotExist):
        admin.get_queue_url(QueueName="nowhere")
    with pytest.raises(admin.exceptions.QueueDoesNotExist):
        admin.send_message(QueueUrl=f"{server.url}/000000000000/nowhere", MessageBody="x")
    with pytest.raises(ClientError) as caught:  # a key that may publish to jobs alone
        sqs.send_message(QueueUrl=f"{server.url}/000000000000/orders", MessageBody="x")
    assert caught.value.response["Error"]["Code"] == "AccessDenied"


def test_s3_changes_reach_eventbridge_triggers_in_s3s_eventbridge_shape(server: Server) -> None:
    s3 = client(server, "s3")
    s3.create_bucket(Bucket="photos")
    s3.put_object(Bucket="photos", Key="out/skipped.jpg", Body=b"no")  # the rule wants in/
    put = s3.put_object(Bucket="photos", Key="in/cat 1.jpg", Body=b"meow")
    s3.delete_object(Bucket="photos", Key="in/cat 1.jpg")
    seen = wait_for(
        lambda: len(lines(server, "photos")) >= 2 and lines(server, "photos"), what="photos"
    )
    created, deleted = sorted(seen, key=lambda e: e["detail-type"] != "Object Created")
    assert created["source"] == "aws.s3"
    assert created["detail-type"] == "Object Created"
    assert created["resources"] == ["arn:aws:s3:::photos"]
    detail = created["detail"]
    assert detail["bucket"] == {"name": "photos"}
    assert detail["object"]["key"] == "in/cat 1.jpg"
    assert detail["object"]["size"] == 4
    assert detail["object"]["etag"] == put["ETag"].strip('"')
    assert detail["reason"] == "PutObject"
    assert deleted["detail-type"] == "Object Deleted"
    assert deleted["detail"]["object"]["key"] == "in/cat 1.jpg"
    assert deleted["detail"]["deletion-type"] == "Permanently Deleted"
    assert all(e["detail"]["object"]["key"].startswith("in/") for e in lines(server, "photos"))
