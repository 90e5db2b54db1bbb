"""Patterns apply to a CloudEvent's attributes, extensions and JSON data."""

from __future__ import annotations

import triggerfish.patterns as patterns
from triggerfish.events.model import Event
from triggerfish.patterns import compile, event_view

ORDER = Event(
    id="e-1",
    source="shop/orders",
    type="com.shop.order.created",
    subject="order-17",
    datacontenttype="application/json",
    data=b'{"total": 250, "items": [{"sku": "A-1"}, {"sku": "B-7"}]}',
    extensions={"partitionkey": "customer-9", "priority": 3},
)


def test_attributes_extensions_and_data_are_all_visible() -> None:
    view = event_view(ORDER)
    assert compile({"type": [{"prefix": "com.shop.order."}]}).matches(view)
    assert compile({"subject": ["order-17"], "specversion": ["1.0"]}).matches(view)
    assert compile({"partitionkey": [{"prefix": "customer-"}]}).matches(view)
    assert compile({"priority": [{"numeric": [">=", 3]}]}).matches(view)
    assert compile({"data": {"total": [{"numeric": [">", 100]}]}}).matches(view)
    assert compile({"data": {"items": {"sku": ["B-7"]}}}).matches(view)
    assert not compile({"data": {"total": [{"numeric": [">", 1000]}]}}).matches(view)
    assert not compile({"time": [{"exists": True}]}).matches(view)


def test_text_data_is_a_string_and_binary_data_is_not_matched_as_data() -> None:
    text = Event(id="1", source="s", type="t", datacontenttype="text/plain", data=b"hello")
    binary = Event(
        id="2", source="s", type="t", datacontenttype="application/octet-stream", data=b"\x00"
    )
    assert compile({"data": [{"prefix": "hel"}]}).matches(event_view(text))
    assert compile({"data": [{"exists": False}]}).matches(event_view(binary))
    assert compile({"data_base64": [{"exists": True}]}).matches(event_view(binary))


def test_public_names() -> None:
    assert sorted(patterns.__all__) == [
        "Pattern",
        "PatternError",
        "RuleSet",
        "compile",
        "event_view",
    ]
