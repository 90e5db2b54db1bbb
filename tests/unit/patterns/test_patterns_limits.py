"""The limits EventBridge puts on a whole pattern, and the rules the recorded cases miss."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from triggerfish.errors import PatternError
from triggerfish.patterns import compile
from triggerfish.patterns._complexity import MAX_WILDCARD_COMPLEXITY, wildcard_complexity
from triggerfish.patterns._operands import wildcard_parts

TOO_COMPLEX = "Rule is too complex - try using fewer wildcard characters"


def _score(*globs: str) -> int:
    def fail(message: str) -> PatternError:
        return PatternError(message)

    return wildcard_complexity([wildcard_parts(g, fail) for g in globs], limit=100)


# -- wildcard complexity ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("globs", "score"),
    [
        # The scores EventBridge's open-source matcher gives (its own test suite).
        (("*",), 1),
        (("abc",), 1),
        (("*ab",), 2),
        (("*aa",), 3),
        (("a*bbb",), 4),
        (("*ab*b*b*",), 7),
        (("*a*a*a*a*a*a*a*a*",), 17),
        (("a*aaa", "aa*aa"), 7),
        (("ab*cd", "ab*wx", "ab*yz"), 6),
        (("ab*c", "ab*c"), 2),
        # An escaped star is a plain character.
        ((r"a\*a\*a",), 1),
    ],
)
def test_wildcard_score_is_the_most_live_prefixes(globs: tuple[str, ...], score: int) -> None:
    assert _score(*globs) == score


def test_the_arn_wildcard_aws_refuses_is_refused_with_its_reason() -> None:
    with pytest.raises(PatternError) as info:
        compile({"EventBusArn": [{"wildcard": "*:*:*:*:*:event-bus/*"}]})
    assert info.value.field == "EventBusArn"
    assert TOO_COMPLEX in str(info.value)


@pytest.mark.parametrize(("stacks", "accepted"), [(3, True), (4, False)])
def test_wildcards_of_one_field_count_together(stacks: int, accepted: bool) -> None:
    # Three "*:stack/<name>/*" wildcards pass EventBridge, a fourth makes it refuse.
    globs = [{"wildcard": f"*:stack/service-{i}/*"} for i in range(stacks)]
    pattern = {"detail": {"stack-id": globs}}
    if accepted:
        assert compile(pattern).matches({"detail": {"stack-id": "x:stack/service-2/abc"}})
    else:
        with pytest.raises(PatternError, match=TOO_COMPLEX):
            compile(pattern)


def test_each_field_has_its_own_complexity_budget() -> None:
    three = [{"wildcard": f"*:stack/service-{i}/*"} for i in range(3)]
    pattern = {"a": three, "b": three}
    assert compile(pattern).matches({"a": "1:stack/service-0/x", "b": "2:stack/service-1/y"})


def test_wildcards_in_different_or_branches_share_the_field_budget() -> None:
    branches = [{"k": [{"wildcard": f"*:stack/service-{i}/*"}]} for i in range(4)]
    with pytest.raises(PatternError, match=TOO_COMPLEX):
        compile({"$or": branches})


def test_anything_but_wildcards_count_too() -> None:
    globs = [f"*:stack/service-{i}/*" for i in range(4)]
    with pytest.raises(PatternError, match=TOO_COMPLEX):
        compile({"k": [{"anything-but": {"wildcard": globs}}]})


def test_plain_prefix_and_suffix_have_no_complexity() -> None:
    many = [{"prefix": f"p{i}"} for i in range(50)] + [{"suffix": f"s{i}"} for i in range(50)]
    assert compile({"k": many}).matches({"k": "p7-x"})


def test_the_limit_is_reached_exactly() -> None:
    # Ten wildcards without a star that share their first character: ten live prefixes.
    at_limit = [{"wildcard": f"x{i}"} for i in range(MAX_WILDCARD_COMPLEXITY)]
    assert compile({"k": at_limit}).matches({"k": "x3"})
    over = [*at_limit, {"wildcard": "xx"}]
    with pytest.raises(PatternError, match=TOO_COMPLEX):
        compile({"k": over})


# -- size --------------------------------------------------------------------------------


def _pattern_of_length(length: int) -> dict[str, Any]:
    base = len(orjson.dumps({"k": [""]}))
    return {"k": ["x" * (length - base)]}


def test_a_pattern_of_4096_characters_is_accepted() -> None:
    pattern = _pattern_of_length(4096)
    assert len(orjson.dumps(pattern)) == 4096
    assert compile(pattern).matches({"k": pattern["k"][0]})


def test_a_longer_pattern_is_refused_with_its_length() -> None:
    with pytest.raises(PatternError, match="4097 characters long as compact JSON"):
        compile(_pattern_of_length(4097))


def test_whitespace_in_pattern_text_does_not_count() -> None:
    pattern = _pattern_of_length(4096)
    text = orjson.dumps(pattern, option=orjson.OPT_INDENT_2).decode()
    assert len(text) > 4096
    assert compile(text).matches({"k": pattern["k"][0]})


# -- numbers -----------------------------------------------------------------------------


@pytest.mark.parametrize("number", [5e9, -5e9, 0.000001, 123.456789])
def test_numbers_within_range_and_precision_are_accepted(number: float) -> None:
    assert compile({"n": [{"numeric": ["=", number]}]}).matches({"n": number})
    assert not compile({"n": [{"anything-but": [number]}]}).matches({"n": number})


@pytest.mark.parametrize(
    ("operand", "words"),
    [
        ([">", 5_000_000_001], "Value must be between -5.0E9 and 5.0E9, inclusive"),
        ([">", 0, "<", 1e10], "Value must be between -5.0E9 and 5.0E9, inclusive"),
        (["=", 0.0000001], "Only values upto 6 decimals are supported"),
    ],
)
def test_numeric_bounds_are_refused(operand: list[Any], words: str) -> None:
    with pytest.raises(PatternError, match=words):
        compile({"n": [{"numeric": operand}]})


def test_anything_but_numbers_are_bounded_too() -> None:
    with pytest.raises(PatternError, match="Value must be between"):
        compile({"n": [{"anything-but": -6e9}]})


def test_plain_numbers_have_no_bound() -> None:
    # An exact value is compared as it is (an account id is a 12-digit number).
    assert compile({"account": [123456789012]}).matches({"account": 123456789012})


def test_a_range_needs_its_lower_bound_first() -> None:
    with pytest.raises(PatternError, match="Too many elements in numeric expression"):
        compile({"n": [{"numeric": ["<", 5, ">", 0]}]})
    assert compile({"n": [{"numeric": [">", 0, "<", 5]}]}).matches({"n": 4.5})


# -- $or, null, empty arrays ---------------------------------------------------------------


def test_exists_false_inside_or_matches_an_absent_field() -> None:
    pattern = compile({"$or": [{"a": [{"exists": False}]}, {"b": ["x"]}]})
    assert pattern.matches({"c": 1})
    assert pattern.matches({"a": 1, "b": "x"})
    assert not pattern.matches({"a": 1, "b": "y"})


def test_operator_names_are_fields_outside_or_only() -> None:
    assert compile({"prefix": ["p"]}).matches({"prefix": "p"})
    with pytest.raises(PatternError, match="prefix is Ruler reserved fieldName"):
        compile({"$or": [{"prefix": ["p"]}, {"b": ["x"]}]})


@pytest.mark.parametrize(
    ("leaf", "event", "expected"),
    [
        ([None], {"a": None}, True),
        ([None], {}, False),
        ([{"exists": True}], {"a": None}, True),
        ([{"anything-but": ["x"]}], {"a": None}, True),
        ([{"numeric": [">", 0]}], {"a": None}, False),
        ([{"prefix": ""}], {"a": None}, False),
        ([{"exists": False}], {"a": []}, True),
        (["x"], {"a": []}, False),
    ],
)
def test_null_and_empty_array_values(
    leaf: list[Any], event: dict[str, Any], expected: bool
) -> None:
    assert compile({"a": leaf}).matches(event) is expected


@pytest.mark.parametrize(
    ("leaf", "event", "expected"),
    [
        ([{"prefix": {"equals-ignore-case": "EventB"}}], "eventbridge", True),
        ([{"prefix": {"equals-ignore-case": "EventB"}}], "xEventB", False),
        ([{"suffix": {"equals-ignore-case": ".PNG"}}], "a.png", True),
        ([{"suffix": {"equals-ignore-case": ".PNG"}}], "a.pngx", False),
    ],
)
def test_prefix_and_suffix_ignoring_case(leaf: list[Any], event: str, expected: bool) -> None:
    assert compile({"a": leaf}).matches({"a": event}) is expected
