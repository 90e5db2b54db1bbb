"""Whatever Triggerfish writes as an HTTP request, it reads back as the same event."""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any

import msgspec
import orjson
from hypothesis import given
from hypothesis import strategies as st

from triggerfish.events.http import parse_http, to_binary_http
from triggerfish.events.model import CORE_ATTRIBUTES, Event, is_json_content_type
from triggerfish.events.structured import to_batch_json, to_structured_json
from triggerfish.events.validate import RESERVED_NAMES

STRUCTURED = {"content-type": "application/cloudevents+json"}

text = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=30)
names = st.from_regex(r"[a-z0-9]{1,20}", fullmatch=True).filter(
    lambda n: n not in CORE_ATTRIBUTES and n not in RESERVED_NAMES
)
sources = st.text("abcxyz019-._~/?#[]@!$&'()*+,;=", max_size=30).map(lambda s: "/" + s)
times = st.datetimes(timezones=st.just(UTC)).map(
    lambda t: t.isoformat(timespec="microseconds").replace("+00:00", "Z")
)
extension_values = st.one_of(text, st.integers(-(2**31), 2**31 - 1), st.booleans())
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)
content_types = st.sampled_from(
    [None, "application/json", "text/plain; charset=utf-8", "application/octet-stream"]
)


@st.composite
def events(draw: st.DrawFn) -> Event:
    content_type = draw(content_types)
    data = draw(
        st.one_of(
            st.none(),
            st.binary(min_size=1, max_size=64),
            json_values.map(orjson.dumps),
            text.map(str.encode),
        )
    )
    return Event(
        id=draw(text),
        source=draw(sources),
        type=draw(text),
        subject=draw(st.none() | text),
        time=draw(st.none() | times),
        datacontenttype=content_type,
        dataschema=draw(st.none() | st.just("https://schemas.example/v1.json")),
        data=data,
        extensions=draw(st.dictionaries(names, extension_values, max_size=4)),
    )


def _same_data(sent: Event, received: Event) -> bool:
    if sent.data == received.data:
        return True
    # Structured mode carries JSON data as JSON: its whitespace may change, never its value.
    assert sent.data is not None
    assert received.data is not None
    return is_json_content_type(sent.datacontenttype) and orjson.loads(sent.data) == orjson.loads(
        received.data
    )


@given(events())
def test_structured_round_trip_keeps_the_event(event: Event) -> None:
    (back,) = parse_http(STRUCTURED, to_structured_json(event))
    assert msgspec.structs.replace(back, data=None) == msgspec.structs.replace(event, data=None)
    assert _same_data(event, back)


@given(events())
def test_binary_round_trip_keeps_the_event_with_extensions_as_strings(event: Event) -> None:
    headers, body = to_binary_http(event)
    assert all(value.isascii() and value == value.strip() for value in headers.values())

    (back,) = parse_http(headers, body)

    as_strings: dict[str, Any] = {
        name: (str(value).lower() if isinstance(value, bool) else str(value))
        for name, value in event.extensions.items()
    }
    assert back == msgspec.structs.replace(event, extensions=as_strings)


@given(st.lists(events(), max_size=5))
def test_batch_round_trip_keeps_every_event_in_order(batch: list[Event]) -> None:
    back = parse_http({"content-type": "application/cloudevents-batch+json"}, to_batch_json(batch))
    assert [e.id for e in back] == [e.id for e in batch]
    assert all(_same_data(a, b) for a, b in zip(batch, back, strict=True) if a.data is not None)


@given(json_values)
def test_structured_json_is_what_handlers_receive(value: Any) -> None:
    event = Event(id="1", source="/s", type="t", data=orjson.dumps(value))
    assert json.loads(to_structured_json(event)) == event.to_dict()
