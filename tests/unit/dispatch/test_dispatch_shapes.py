"""The shapes handlers receive for each event_format, and batch item failures."""

from __future__ import annotations

import orjson

from triggerfish.bus.base import Delivery
from triggerfish.dispatch.shapes import failed_items, payload
from triggerfish.events.model import Event


def delivery(n: int, data: bytes | None = b'{"n": 1}', **extra: str) -> Delivery:
    event = Event(id=f"e{n}", source="shop", type="order.created", subject=f"order/{n}",
                  time="2026-11-27T10:00:00Z", datacontenttype="application/json", data=data,
                  extensions=dict(extra))  # fmt: skip
    return Delivery(topic="orders", group="g", offset=n, event=event, attempt=2,
                    published_at=1_800_000_000.5, lease_until=0.0)  # fmt: skip


def test_eventbridge_maps_type_source_subject_and_data() -> None:
    (one,) = [orjson.loads(payload("eventbridge", [delivery(1)], batched=False, topic="orders"))]
    assert one["detail-type"] == "order.created"
    assert one["source"] == "shop"
    assert one["resources"] == ["order/1"]
    assert one["detail"] == {"n": 1}
    assert one["time"] == "2026-11-27T10:00:00Z"
    assert one["version"] == "0"


def test_sqs_records_carry_body_attempts_and_extensions() -> None:
    body = orjson.loads(
        payload(
            "sqs", [delivery(1, traceparent="00-ab"), delivery(2)], batched=True, topic="orders"
        )
    )
    first, second = body["Records"]
    assert (first["messageId"], second["messageId"]) == ("e1", "e2")
    assert orjson.loads(first["body"]) == {"n": 1}
    assert first["attributes"]["ApproximateReceiveCount"] == "2"
    assert first["attributes"]["SentTimestamp"] == "1800000000500"
    assert first["messageAttributes"]["traceparent"]["stringValue"] == "00-ab"
    assert first["eventSource"] == "aws:sqs"
    assert first["eventSourceARN"].endswith(":orders")


def test_aws_format_merges_records_of_a_batch() -> None:
    a = delivery(1, b'{"Records": [{"k": 1}]}')
    b = delivery(2, b'{"Records": [{"k": 2}]}')
    assert payload("data", [a], batched=False, topic="t") == b'{"Records": [{"k": 1}]}'
    merged = orjson.loads(payload("data", [a, b], batched=True, topic="t"))
    assert merged == {"Records": [{"k": 1}, {"k": 2}]}


def test_batch_item_failures_are_read_only_in_lambdas_shape() -> None:
    assert failed_items(b'{"batchItemFailures": [{"itemIdentifier": "e2"}]}') == {"e2"}
    assert failed_items(b'{"batchItemFailures": []}') == set()
    assert failed_items(b'{"ok": true}') is None
    assert failed_items(b"[1, 2]") is None
    assert failed_items(None) is None


def test_aws_shapes_name_the_node_s_region() -> None:
    bridge = orjson.loads(
        payload("eventbridge", [delivery(1)], batched=False, topic="orders", region="eu-west-1")
    )
    assert bridge["region"] == "eu-west-1"
    (record,) = orjson.loads(
        payload("sqs", [delivery(1)], batched=True, topic="orders", region="eu-west-1")
    )["Records"]
    assert record["awsRegion"] == "eu-west-1"
    assert record["eventSourceARN"].startswith("arn:aws:sqs:eu-west-1:")
