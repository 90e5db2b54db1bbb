from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from triggerfish.errors import EventValidationError
from triggerfish.events.create import new_event, new_event_id
from triggerfish.events.http import parse_http, to_binary_http


def test_new_event_fills_id_time_and_json_data() -> None:
    event = new_event("com.example.order.created", "/orders", {"order": 7, "total": 12.5})
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{26}", event.id)
    assert event.time is not None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", event.time)
    sent_at = datetime.fromisoformat(event.time)
    assert abs(datetime.now(UTC) - sent_at) < timedelta(minutes=5)
    assert event.datacontenttype == "application/json"
    assert event.data == b'{"order":7,"total":12.5}'
    assert event.to_dict()["data"] == {"order": 7, "total": 12.5}


def test_new_event_keeps_what_the_caller_gives() -> None:
    event = new_event(
        "t",
        "/s",
        None,
        subject="order-7",
        id="fixed-id",
        time="2024-05-01T12:30:00Z",
        extensions={"partitionkey": "customer-3", "attempt": 2},
    )
    assert (event.id, event.time, event.subject) == ("fixed-id", "2024-05-01T12:30:00Z", "order-7")
    assert event.data is None
    assert event.extensions == {"partitionkey": "customer-3", "attempt": 2}


def test_new_event_sends_text_and_bytes_as_they_are() -> None:
    text = new_event("t", "/s", "caf\u00e9", datacontenttype="text/plain; charset=utf-8")
    blob = new_event("t", "/s", b"\x00\x01", datacontenttype="application/octet-stream")
    assert text.data == "caf\u00e9".encode()
    assert blob.data == b"\x00\x01"


def test_new_event_refuses_data_it_cannot_encode() -> None:
    with pytest.raises(EventValidationError, match="cannot be written as JSON"):
        new_event("t", "/s", {"when": object()})
    with pytest.raises(EventValidationError, match="must be bytes or str"):
        new_event("t", "/s", {"a": 1}, datacontenttype="text/plain")


def test_new_event_is_validated() -> None:
    with pytest.raises(EventValidationError, match="attribute 'source' must be a URI-reference"):
        new_event("t", "not a uri", {})
    with pytest.raises(EventValidationError, match="attribute 'type' is required"):
        new_event("", "/s", {})


def test_new_events_travel_over_http() -> None:
    event = new_event("com.example.x", "/s", [1, 2, 3], extensions={"traceparent": "00-a-b-01"})
    headers, body = to_binary_http(event)
    assert parse_http(headers, body) == [event]


def test_event_ids_are_unique_and_sort_by_time() -> None:
    ids = [new_event_id() for _ in range(1000)]
    assert len(set(ids)) == 1000
    # The first ten characters are the millisecond: never smaller for a later id.
    prefixes = [event_id[:10] for event_id in ids]
    assert prefixes == sorted(prefixes)
