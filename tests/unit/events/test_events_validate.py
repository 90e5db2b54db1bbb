from __future__ import annotations

from typing import Any

import msgspec
import pytest

from triggerfish.errors import EventValidationError
from triggerfish.events.model import Event
from triggerfish.events.validate import check_rfc3339, uri_reference_problem, validate_event

GOOD = Event(id="e-1", source="/orders", type="com.example.order.created")


def _with(**changes: Any) -> Event:
    return msgspec.structs.replace(GOOD, **changes)


def test_a_minimal_event_is_valid() -> None:
    validate_event(GOOD)


@pytest.mark.parametrize("name", ["id", "source", "type", "specversion"])
@pytest.mark.parametrize("value", ["", None])
def test_required_attribute_missing_or_empty_is_named(name: str, value: Any) -> None:
    with pytest.raises(EventValidationError, match=f"attribute '{name}' is required") as info:
        validate_event(_with(**{name: value}))
    assert info.value.field == name


@pytest.mark.parametrize("name", ["id", "source", "type", "subject", "time", "dataschema"])
def test_attribute_of_the_wrong_type_is_named(name: str) -> None:
    with pytest.raises(EventValidationError, match=f"attribute '{name}' must be a string"):
        validate_event(_with(**{name: 42}))


def test_specversion_message_says_what_it_must_be_and_what_came() -> None:
    with pytest.raises(EventValidationError) as info:
        validate_event(_with(specversion="0.3"))
    assert str(info.value).startswith('attribute \'specversion\' must be "1.0" (got "0.3")')
    assert info.value.field == "specversion"


@pytest.mark.parametrize(
    "source",
    [
        "/orders",
        "https://shop.example/orders?region=eu#x",
        "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66",
        "//github.com/cloudevents/conformance",
        "orders",
        "mailto:ops@example.com",
        "/path%20with%20escapes",
    ],
)
def test_source_accepts_uri_references(source: str) -> None:
    validate_event(_with(source=source))


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("/orders with space", "character ' ' at position 7"),
        ("/bad%zzescape", "'%' at position 4"),
        ("/cut%2", "'%' at position 4"),
        ("1http://x", "not a valid scheme"),
        ("/caf\u00e9", "percent-encode it"),
    ],
)
def test_source_that_is_not_a_uri_reference_is_explained(source: str, reason: str) -> None:
    with pytest.raises(EventValidationError, match="attribute 'source' must be a URI-reference"):
        validate_event(_with(source=source))
    assert reason in uri_reference_problem(source)  # type: ignore[operator]


@pytest.mark.parametrize(
    "value",
    [
        "2018-04-05T03:56:24Z",
        "2018-04-05T03:56:24.123456Z",
        "2018-04-05t03:56:24z",
        "2018-04-05T03:56:24+02:00",
        "2016-12-31T23:59:60Z",
        "2024-02-29T00:00:00-11:30",
    ],
)
def test_time_accepts_rfc3339(value: str) -> None:
    validate_event(_with(time=value))
    assert check_rfc3339(value)


@pytest.mark.parametrize(
    "value",
    [
        "2018-04-05",
        "2018-04-05T03:56:24",
        "2018-04-05 03:56:24Z",
        "2018-13-05T03:56:24Z",
        "2023-02-29T00:00:00Z",
        "2018-04-05T24:00:00Z",
        "2018-04-05T03:56:24+25:00",
        "yesterday",
    ],
)
def test_time_rejects_what_is_not_rfc3339(value: str) -> None:
    with pytest.raises(EventValidationError, match="attribute 'time' must be an RFC 3339") as info:
        validate_event(_with(time=value))
    assert info.value.field == "time"


def test_subject_must_not_be_empty() -> None:
    with pytest.raises(EventValidationError, match="attribute 'subject' must not be empty"):
        validate_event(_with(subject=""))


def test_dataschema_must_be_an_absolute_uri() -> None:
    validate_event(_with(dataschema="https://schemas.example/order.json"))
    for value in ("/schemas/order.json", "not a uri"):
        with pytest.raises(EventValidationError, match="'dataschema' must be an absolute URI"):
            validate_event(_with(dataschema=value))


def test_datacontenttype_must_be_a_media_type() -> None:
    validate_event(_with(datacontenttype="text/plain; charset=utf-8"))
    with pytest.raises(EventValidationError, match="'datacontenttype' must be a media type"):
        validate_event(_with(datacontenttype="json"))


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("Upper", "lowercase letters a-z and digits 0-9"),
        ("with-dash", "lowercase letters a-z and digits 0-9"),
        ("under_score", "lowercase letters a-z and digits 0-9"),
        ("", "lowercase letters a-z and digits 0-9"),
        ("a" * 21, "21 characters long, over the limit of 20"),
    ],
)
def test_extension_names_follow_the_naming_rule(name: str, rule: str) -> None:
    with pytest.raises(EventValidationError, match=rule) as info:
        validate_event(_with(extensions={name: "x"}))
    assert info.value.field == name


def test_an_extension_name_of_twenty_characters_is_accepted() -> None:
    validate_event(_with(extensions={"a" * 20: "x"}))


@pytest.mark.parametrize("name", ["id", "time", "data"])
def test_an_extension_cannot_take_a_core_name(name: str) -> None:
    with pytest.raises(EventValidationError, match=f"extension '{name}' takes the name"):
        validate_event(_with(extensions={name: "x"}))


@pytest.mark.parametrize(
    ("value", "kind"),
    [({"a": 1}, "an object"), ([1], "an array"), (1.5, "a decimal number")],
)
def test_extension_values_must_be_scalars(value: Any, kind: str) -> None:
    with pytest.raises(EventValidationError, match=f"got {kind}"):
        validate_event(_with(extensions={"traceinfo": value}))


def test_extension_integers_must_fit_in_32_bits() -> None:
    validate_event(_with(extensions={"small": -(2**31), "big": 2**31 - 1, "flag": True}))
    with pytest.raises(EventValidationError, match="outside the signed 32-bit range"):
        validate_event(_with(extensions={"big": 2**31}))


def test_strings_must_be_encodable_as_utf8() -> None:
    with pytest.raises(EventValidationError, match="U\\+D800 at position 1"):
        validate_event(_with(subject="a\ud800"))
    with pytest.raises(EventValidationError, match="'note'"):
        validate_event(_with(extensions={"note": "\udfff"}))
