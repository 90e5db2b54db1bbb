"""How deeply JSON nests, measured without parsing it: the limit holds in every case,
strings do not count, and what the server shows of deeper data stays readable."""

from __future__ import annotations

import base64

import msgspec
import pytest

from triggerfish.errors import EventValidationError
from triggerfish.events.depth import check_depth, deeper_than
from triggerfish.events.model import WRITABLE_DEPTH, Event


def nested(depth: int, inner: bytes = b"") -> bytes:
    return (
        b'{"a":' * (depth // 2)
        + b"[" * (depth - depth // 2)
        + inner
        + (b"]" * (depth - depth // 2))
        + b"}" * (depth // 2)
    )


@pytest.mark.parametrize("depth", [0, 1, 5, 63, 64])
def test_json_up_to_the_limit_passes(depth: int) -> None:
    text = nested(depth, b"1")
    msgspec.json.decode(text)  # valid JSON of that depth
    assert not deeper_than(text, 64)


@pytest.mark.parametrize("depth", [65, 66, 1000, 100_000])
def test_json_past_the_limit_is_caught(depth: int) -> None:
    assert deeper_than(nested(depth, b"1"), 64)


def test_wide_json_of_many_brackets_passes() -> None:
    text = b"[" + b",".join([b'{"items":[[1,2],{"x":[3]}]}'] * 5000) + b"]"
    assert not deeper_than(text, 64)
    assert deeper_than(text, 4)


@pytest.mark.parametrize(
    "text",
    [
        b'["' + b"[" * 100 + b'"]',  # brackets inside a string
        b'{"k":"' + b"{" * 70 + b'\\"' + b"[" * 70 + b'"}',  # an escaped quote inside it
        b'["\\\\", "' + b"[" * 100 + b'"]',  # an escaped backslash ends no string
    ],
)
def test_brackets_inside_strings_do_not_count(text: bytes) -> None:
    msgspec.json.decode(text)
    assert not deeper_than(text, 64)


def test_a_string_that_hides_no_nesting_does_not_hide_real_nesting() -> None:
    text = b'["\\"", ' + nested(65, b"1") + b"]"
    assert deeper_than(text, 64)


def test_unbalanced_invalid_json_still_counts() -> None:
    assert deeper_than(b"[" * 65, 64)


def test_the_refusal_names_the_limit_and_how_to_fix_it() -> None:
    with pytest.raises(EventValidationError, match="nested more than 64 levels") as refused:
        check_depth(nested(66), 64, levels_above=1)
    assert refused.value.field == "data"
    assert "json_depth_limit" in str(refused.value)
    check_depth(nested(65), 64, levels_above=1)  # the envelope's own level is allowed


def test_data_deeper_than_the_api_can_write_is_shown_as_base64() -> None:
    data = nested(WRITABLE_DEPTH + 1, b"1")
    event = Event(id="1", source="/s", type="t", datacontenttype="application/json", data=data)
    shown = event.to_dict()
    assert "data" not in shown
    assert base64.b64decode(shown["data_base64"]) == data
    assert event.to_dict(strict=True)["data"] is not None  # a delivery gets it parsed
    shallow = Event(id="2", source="/s", type="t", data=nested(WRITABLE_DEPTH, b"1"))
    assert "data" in shallow.to_dict()
