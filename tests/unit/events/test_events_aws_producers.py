"""PutEvents entries and SQS messages as events, and the shapes triggers get back."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from triggerfish.bus.base import Delivery
from triggerfish.dispatch.shapes import PayloadMode, payload
from triggerfish.events import sqs
from triggerfish.events.eventbridge import EntryError, bus_topic, entry_event, entry_size
from triggerfish.events.model import Event
from triggerfish.sources.buckets.notifications import Actor, Change, change_event


def deliver(event: Event, mode: PayloadMode) -> dict[str, Any]:
    delivery = Delivery(topic="t", group="g", offset=7, event=event, attempt=1,
                        published_at=1_800_000_000.0, lease_until=0.0)  # fmt: skip
    shaped: dict[str, Any] = orjson.loads(payload(mode, [delivery], batched=False, topic="t"))
    return shaped


def test_an_entry_comes_back_as_the_envelope_it_was_sent_as() -> None:
    entry = {
        "Source": "shop",
        "DetailType": "Order Placed",
        "Detail": '{"id": "A-1"}',
        "Resources": ["r1", "r2"],
        "Time": 1_740_830_400,
    }
    envelope = deliver(entry_event(entry), "eventbridge")
    assert envelope["source"] == "shop"
    assert envelope["detail-type"] == "Order Placed"
    assert envelope["detail"] == {"id": "A-1"}
    assert envelope["resources"] == ["r1", "r2"]
    assert envelope["time"] == "2025-03-01T12:00:00Z"


@pytest.mark.parametrize(
    ("entry", "code"),
    [
        ({"DetailType": "t", "Detail": "{}"}, "InvalidArgument"),
        ({"Source": "s", "DetailType": "t", "Detail": "[1, 2]"}, "MalformedDetail"),
        ({"Source": "s", "DetailType": "t", "Detail": "{"}, "MalformedDetail"),
        (
            {"Source": "aws.s3", "DetailType": "t", "Detail": "{}"},
            "NotAuthorizedForSourceException",
        ),
    ],
)
def test_an_entry_eventbridge_refuses_is_refused_with_its_code(
    entry: dict[str, str], code: str
) -> None:
    with pytest.raises(EntryError) as caught:
        entry_event(entry)
    assert caught.value.code == code


def test_bus_names_and_arns_name_topics() -> None:
    assert bus_topic({}) == "default"
    assert bus_topic({"EventBusName": "orders"}) == "orders"
    assert bus_topic({"EventBusName": "arn:aws:events:us-east-1:1:event-bus/orders"}) == "orders"


def test_entry_size_counts_as_eventbridge_does() -> None:
    entry = {"Source": "ab", "DetailType": "cd", "Detail": "{}", "Resources": ["é"], "Time": 1}
    assert entry_size(entry) == 14 + 2 + 2 + 2 + 2


def test_a_message_keeps_its_body_attributes_and_ids_for_the_sqs_record() -> None:
    attributes = sqs.check_attributes(
        {
            "n": {"DataType": "Number", "StringValue": "3"},
            "b": {"DataType": "Binary", "BinaryValue": "AAE="},
        }
    )
    event = sqs.message_event(
        "jobs", "héllo", attributes=attributes, group_id="g", deduplication_id="d", sender="AK"
    )
    (record,) = deliver(event, "sqs")["Records"]
    assert record["body"] == "héllo"
    assert record["md5OfBody"] == sqs.md5_hex("héllo".encode())
    assert record["messageAttributes"]["n"] == {
        "stringValue": "3", "stringListValues": [], "binaryListValues": [], "dataType": "Number"
    }  # fmt: skip
    assert record["messageAttributes"]["b"]["binaryValue"] == "AAE="
    assert record["md5OfMessageAttributes"] == sqs.md5_of_attributes(attributes)
    assert record["attributes"]["SenderId"] == "AK"
    assert record["attributes"]["MessageGroupId"] == "g"
    assert record["attributes"]["MessageDeduplicationId"] == "d"
    assert record["attributes"]["SequenceNumber"] == "7"


def test_the_same_deduplication_id_is_the_same_event_on_one_queue_only() -> None:
    def send(queue: str) -> str:
        return sqs.message_event(
            queue, "x", attributes={}, group_id=None, deduplication_id="d", sender="a"
        ).id

    assert send("jobs") == send("jobs")
    assert send("jobs") != send("other")


def test_attribute_digest_does_not_depend_on_order_but_on_every_value() -> None:
    a = {
        "x": {"DataType": "String", "StringValue": "1"},
        "y": {"DataType": "String", "StringValue": "2"},
    }
    b = dict(reversed(list(a.items())))
    c = {**a, "y": {"DataType": "String", "StringValue": "3"}}
    assert sqs.md5_of_attributes(a) == sqs.md5_of_attributes(b)
    assert sqs.md5_of_attributes(a) != sqs.md5_of_attributes(c)


@pytest.mark.parametrize(
    ("name", "detail_type", "reason"),
    [
        ("ObjectCreated:Put", "Object Created", "PutObject"),
        ("ObjectCreated:CompleteMultipartUpload", "Object Created", "CompleteMultipartUpload"),
        ("ObjectRemoved:Delete", "Object Deleted", "DeleteObject"),
    ],
)
def test_a_bucket_change_is_shaped_as_s3_sends_it_to_eventbridge(
    name: str, detail_type: str, reason: str
) -> None:
    size = None if name.startswith("ObjectRemoved") else 4
    etag = None if size is None else "abc"
    change = Change(name, "photos", "in/cat 1.jpg", size, etag, modified=1_740_830_400.25)
    actor = Actor(principal="AKIA1", source_ip="10.0.0.9", request_id="req-1")
    event = change_event(change, 26, region="eu-west-1", actor=actor)
    envelope = deliver(event, "eventbridge")
    assert envelope["source"] == "aws.s3"
    assert envelope["detail-type"] == detail_type
    assert envelope["region"] == "eu-west-1"
    assert envelope["time"] == "2025-03-01T12:00:00Z"
    assert envelope["resources"] == ["arn:aws:s3:::photos"]
    detail = envelope["detail"]
    assert detail["bucket"] == {"name": "photos"}
    assert detail["object"]["key"] == "in/cat 1.jpg"
    assert detail["object"].get("size") == size
    assert detail["object"].get("etag") == etag
    assert detail["reason"] == reason
    assert detail["requester"] == "AKIA1"
    assert detail["source-ip-address"] == "10.0.0.9"
    assert detail["request-id"] == "req-1"
    assert ("deletion-type" in detail) == (detail_type == "Object Deleted")
