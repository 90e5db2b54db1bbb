from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import orjson
import pytest

from triggerfish.errors import EventValidationError, PayloadTooLargeError
from triggerfish.events.http import content_mode, parse_http, to_binary_http
from triggerfish.events.model import Event
from triggerfish.events.structured import to_batch_json, to_structured_json

BINARY = {
    "ce-specversion": "1.0",
    "ce-id": "A-1",
    "ce-source": "/orders",
    "ce-type": "com.example.order.created",
}
STRUCTURED = {"Content-Type": "application/cloudevents+json"}
BATCH = {"Content-Type": "application/cloudevents-batch+json"}


def _structured(**members: Any) -> bytes:
    base: dict[str, Any] = {
        "specversion": "1.0",
        "id": "A-1",
        "source": "/orders",
        "type": "com.example.order.created",
    }
    base.update(members)
    return orjson.dumps(base)


# -- mode ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "mode"),
    [
        ("application/cloudevents+json", "structured"),
        ("Application/CloudEvents+JSON; charset=utf-8", "structured"),
        ("application/cloudevents-batch+json", "batch"),
        ("application/json", "binary"),
        ("text/plain", "binary"),
        (None, "binary"),
    ],
)
def test_mode_follows_content_type(content_type: str | None, mode: str) -> None:
    assert content_mode(content_type) == mode


def test_an_unsupported_event_format_is_refused_by_name() -> None:
    with pytest.raises(EventValidationError, match=r'"application/cloudevents\+avro" is not'):
        parse_http({"content-type": "application/cloudevents+avro"}, b"\x00")


# -- binary mode --------------------------------------------------------------------------


def test_binary_mode_keeps_the_body_byte_for_byte() -> None:
    body = b'{ "total" :  12.50 ,\n "items": [] }\n'
    (event,) = parse_http({**BINARY, "Content-Type": "application/json"}, body)
    assert event.data == body
    assert event.datacontenttype == "application/json"
    assert (event.id, event.source, event.type) == ("A-1", "/orders", "com.example.order.created")


def test_binary_headers_are_matched_without_regard_to_case() -> None:
    headers = {key.upper(): value for key, value in BINARY.items()}
    headers["Ce-TraceParent"] = "00-abc-def-01"
    (event,) = parse_http(headers, b"x")
    assert event.id == "A-1"
    assert event.extensions == {"traceparent": "00-abc-def-01"}


def test_binary_mode_accepts_any_mapping_of_headers() -> None:
    headers = httpx.Headers({**BINARY, "ce-subject": "order-7", "content-type": "text/plain"})
    (event,) = parse_http(headers, b"hello")
    assert event.subject == "order-7"
    assert event.data_value() == "hello"


def test_binary_header_values_are_trimmed_and_percent_decoded() -> None:
    headers = {**BINARY, "ce-subject": "  Euro%20%E2%82%AC%20%F0%9F%98%80 ", "ce-note": "100%25"}
    (event,) = parse_http(headers, b"")
    assert event.subject == "Euro \u20ac \U0001f600"
    assert event.extensions == {"note": "100%"}


def test_percent_encoding_of_invalid_utf8_is_rejected() -> None:
    with pytest.raises(EventValidationError, match=r"'ce-subject'.*not valid UTF-8") as info:
        parse_http({**BINARY, "ce-subject": "%C0%A0"}, b"")
    assert info.value.field == "subject"


def test_binary_mode_without_body_has_no_data() -> None:
    (event,) = parse_http(BINARY, b"")
    assert event.data is None
    assert event.datacontenttype is None


def test_binary_mode_missing_attribute_names_its_header() -> None:
    headers = {k: v for k, v in BINARY.items() if k != "ce-source"}
    with pytest.raises(EventValidationError, match="'ce-source'") as info:
        parse_http(headers, b"{}")
    assert info.value.field == "source"


def test_a_request_without_any_event_says_how_to_send_one() -> None:
    with pytest.raises(EventValidationError, match="carries no CloudEvent"):
        parse_http({"content-type": "application/json"}, b"{}")


def test_binary_mode_refuses_a_data_header() -> None:
    with pytest.raises(EventValidationError, match="body is the data"):
        parse_http({**BINARY, "ce-data": "x"}, b"")


def test_binary_mode_refuses_bad_extension_names() -> None:
    with pytest.raises(EventValidationError, match="lowercase letters"):
        parse_http({**BINARY, "ce-trace-id": "x"}, b"")


def test_binary_mode_validates_attributes() -> None:
    with pytest.raises(EventValidationError, match=r'must be "1.0" \(got "0.3"\)'):
        parse_http({**BINARY, "ce-specversion": "0.3"}, b"")


def test_the_same_header_twice_with_two_values_is_refused() -> None:
    with pytest.raises(EventValidationError, match="given twice"):
        parse_http({**BINARY, "CE-ID": "other"}, b"")


# -- structured mode ----------------------------------------------------------------------


def test_structured_json_data_is_stored_compactly_with_big_numbers_intact() -> None:
    body = b"""{"specversion":"1.0","id":"1","source":"/s","type":"t",
        "data": { "n" : 123456789012345678901234567890, "price": 0.1000 }}"""
    (event,) = parse_http({"content-type": "application/cloudevents+json; charset=utf-8"}, body)
    assert event.data == b'{"n":123456789012345678901234567890,"price":0.1000}'
    assert event.datacontenttype is None


def test_structured_text_data_is_kept_as_utf8() -> None:
    body = _structured(datacontenttype="text/plain", data="Hello, \U0001f30e!")
    (event,) = parse_http(STRUCTURED, body)
    assert event.data == "Hello, \U0001f30e!".encode()


def test_structured_data_base64_is_decoded() -> None:
    raw = bytes(range(256))
    body = _structured(
        datacontenttype="application/octet-stream", data_base64=base64.b64encode(raw).decode()
    )
    (event,) = parse_http(STRUCTURED, body)
    assert event.data == raw


def test_structured_extensions_keep_their_json_types() -> None:
    body = _structured(comexampleone="value", retries=3, replayed=False)
    (event,) = parse_http(STRUCTURED, body)
    assert event.extensions == {"comexampleone": "value", "retries": 3, "replayed": False}


def test_null_attributes_count_as_absent_and_null_json_data_is_kept() -> None:
    (event,) = parse_http(STRUCTURED, _structured(subject=None, data=None, partitionkey=None))
    assert event.subject is None
    assert event.extensions == {}
    assert event.data == b"null"
    (text,) = parse_http(STRUCTURED, _structured(datacontenttype="text/plain", data=None))
    assert text.data is None
    (blob,) = parse_http(STRUCTURED, _structured(data=None, data_base64="AAE="))
    assert blob.data == b"\x00\x01"


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ({"data": 1, "data_base64": "AA=="}, "both 'data' and 'data_base64'"),
        ({"data_base64": "not base64!"}, "'data_base64' is not valid base64"),
        ({"data_base64": 5}, "'data_base64' must be a base64 string"),
        ({"datacontenttype": "text/plain", "data": {"a": 1}}, "'data' must be a string"),
        ({"routing": {"region": "eu"}}, "extension 'routing' must be a string.*got an object"),
        ({"routing": ["eu"]}, "extension 'routing' must be a string.*got an array"),
        ({"Routing": "eu"}, "lowercase letters"),
        ({"specversion": 1.0}, "attribute 'specversion' must be a string"),
        ({"time": "05/04/2018"}, "attribute 'time' must be an RFC 3339 timestamp"),
    ],
)
def test_structured_errors_name_the_rule(members: dict[str, Any], message: str) -> None:
    with pytest.raises(EventValidationError, match=message):
        parse_http(STRUCTURED, _structured(**members))


def test_structured_missing_attribute_is_named() -> None:
    body = orjson.dumps({"specversion": "1.0", "source": "/s", "type": "t"})
    with pytest.raises(EventValidationError, match="attribute 'id' is required") as info:
        parse_http(STRUCTURED, body)
    assert info.value.field == "id"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"id": "\xff"}', "not valid UTF-8"),
    ],
)
def test_a_structured_body_that_is_not_a_json_object_is_refused(body: bytes, message: str) -> None:
    with pytest.raises(EventValidationError, match=message):
        parse_http(STRUCTURED, body)


# -- batch mode ---------------------------------------------------------------------------


def test_batch_mode_returns_every_event_in_order() -> None:
    events = [Event(id=str(i), source="/s", type="t", data=b'{"i":%d}' % i) for i in range(3)]
    parsed = parse_http(BATCH, to_batch_json(events))
    assert [e.id for e in parsed] == ["0", "1", "2"]
    assert [json.loads(e.data or b"") for e in parsed] == [{"i": 0}, {"i": 1}, {"i": 2}]


def test_an_empty_batch_has_no_events() -> None:
    assert parse_http(BATCH, b"[]") == []


def test_batch_errors_name_the_index() -> None:
    good = json.loads(_structured())
    bad = {**good, "specversion": "0.3"}
    body = orjson.dumps([good, good, bad])
    with pytest.raises(EventValidationError) as info:
        parse_http(BATCH, body)
    assert str(info.value).startswith("event [2]: attribute 'specversion' must be \"1.0\"")
    assert info.value.field == "specversion"


def test_batch_items_must_be_objects() -> None:
    with pytest.raises(EventValidationError, match="event \\[1\\]: must be a JSON object"):
        parse_http(BATCH, b"[" + _structured() + b', "x"]')


def test_a_batch_must_be_an_array() -> None:
    with pytest.raises(EventValidationError, match="must be a JSON array"):
        parse_http(BATCH, _structured())


# -- size ---------------------------------------------------------------------------------


def test_a_body_over_max_size_is_refused_with_size_and_limit() -> None:
    with pytest.raises(PayloadTooLargeError, match="1001 bytes, over the limit of 1000 bytes"):
        parse_http(BINARY, b"x" * 1001, max_size=1000)
    ce_bytes = sum(len(name) + len(value) for name, value in BINARY.items())
    (event,) = parse_http(BINARY, b"x" * (1000 - ce_bytes), max_size=1000)
    assert event.data == b"x" * (1000 - ce_bytes)


def test_ce_headers_count_toward_the_size_of_a_binary_event() -> None:
    headers = {**BINARY, "ce-note": "n" * 600}
    with pytest.raises(PayloadTooLargeError, match=r"ce-\* headers count toward") as refused:
        parse_http(headers, b"x" * 500, max_size=1000)
    ce_bytes = sum(len(name) + len(value) for name, value in headers.items())
    assert f"500 of body and {ce_bytes} of ce-* headers" in str(refused.value)


# -- writing ------------------------------------------------------------------------------


def test_binary_writing_percent_encodes_header_values() -> None:
    event = Event(id="1", source="/s", type="t", subject='a "quoted" 100% \u20ac\nline')
    headers, body = to_binary_http(event)
    assert headers["ce-subject"] == "a%20%22quoted%22%20100%25%20%E2%82%AC%0Aline"
    assert all(value.isascii() for value in headers.values())
    assert body == b""
    (back,) = parse_http(headers, body)
    assert back.subject == event.subject


def test_structured_writing_chooses_data_by_content_type() -> None:
    text = Event(id="1", source="/s", type="t", datacontenttype="text/csv", data=b"a,b\n")
    blob = Event(id="2", source="/s", type="t", datacontenttype="image/png", data=b"\x89PNG")
    broken = Event(id="3", source="/s", type="t", datacontenttype="application/json", data=b"{")
    assert json.loads(to_structured_json(text))["data"] == "a,b\n"
    assert json.loads(to_structured_json(blob))["data_base64"] == "iVBORw=="
    assert json.loads(to_structured_json(broken))["data_base64"] == "ew=="
    for event in (text, blob, broken):
        assert parse_http(STRUCTURED, to_structured_json(event)) == [event]


def test_an_empty_content_type_counts_as_absent() -> None:
    (event,) = parse_http({**BINARY, "Content-Type": " "}, b"{}")
    assert event.datacontenttype is None
    assert event.data_value() == {}


def test_ce_datacontenttype_is_used_only_without_content_type() -> None:
    (fallback,) = parse_http({**BINARY, "ce-datacontenttype": "text/plain"}, b"hi")
    assert fallback.datacontenttype == "text/plain"
    both = {**BINARY, "ce-datacontenttype": "text/plain", "content-type": "application/json"}
    (event,) = parse_http(both, b"{}")
    assert event.datacontenttype == "application/json"
    assert event.extensions == {}
