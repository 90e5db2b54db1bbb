"""Invalid patterns are rejected with a message that names the path and the fix."""

from __future__ import annotations

from typing import Any

import pytest

from triggerfish.errors import PatternError, ValidationError
from triggerfish.patterns import compile


@pytest.mark.parametrize(
    ("pattern", "field", "words"),
    [
        ({"detail": {"count": 42}}, "detail.count", '"count" must be an object or an array'),
        ({"resources": []}, "resources", "Empty arrays are not allowed"),
        ({"detail": {}}, "detail", "Empty objects are not allowed"),
        ({"a": [{"NUMERIC": ["=", 5]}]}, "a", 'write "numeric"'),
        ({"a": [{"bogus": 1}]}, "a", "Unrecognized match type bogus"),
        ({"a": [{"prefix": "x", "suffix": "y"}]}, "a", "Only one key allowed in match expression"),
        ({"a": [{}]}, "a", "Match expression name not found"),
        ({"a": [["x"]]}, "a", "Match value must be String, number, true, false, or null"),
        ({"a": [{"numeric": 10}]}, "a", "Value of numeric must be an array."),
        ({"a": [{"numeric": []}]}, "a", "Invalid member in numeric match: nothing"),
        ({"a": [{"numeric": [5, ">"]}]}, "a", "Invalid member in numeric match: 5"),
        ({"a": [{"numeric": [">", 0, ">", 1]}]}, "a", "Bad numeric range operator: >"),
        ({"a": [{"numeric": [">", 0, 5]}]}, "a", "Bad value in numeric range: 5"),
        ({"a": [{"numeric": [">", 0, "<"]}]}, "a", "Value of < must be numeric"),
        ({"a": [{"numeric": ["=", 1, "<", 5]}]}, "a", "Too many elements in numeric expression"),
        ({"a": [{"numeric": ["<=", 5, ">", 0]}]}, "a", "lower bound"),
        ({"a": [{"numeric": [">", 0, "<", 5, 6]}]}, "a", "Too many terms in numeric range"),
        ({"a": [{"numeric": ["!=", 1]}]}, "a", "Unrecognized numeric range operator: !="),
        ({"a": [{"numeric": [">", "1"]}]}, "a", "Value of > must be numeric"),
        ({"a": [{"numeric": ["=", "1"]}]}, "a", "Value of equals must be numeric"),
        ({"a": [{"numeric": [">", 5, "<", 5]}]}, "a", "Bottom must be less than top"),
        ({"a": [{"numeric": [">", True]}]}, "a", "must be numeric"),
        ({"a": [{"prefix": 1}]}, "a", "prefix match pattern must be a string"),
        ({"a": [{"prefix": {"wildcard": "x"}}]}, "a", "Unsupported prefix pattern: wildcard"),
        ({"a": [{"prefix": {"equals-ignore-case": 1}}]}, "a", "equals-ignore-case match pattern"),
        ({"a": [{"suffix": [".png"]}]}, "a", "suffix match pattern must be a string"),
        ({"a": [{"suffix": {"exists": True}}]}, "a", "Unsupported suffix pattern: exists"),
        ({"a": [{"equals-ignore-case": ["x"]}]}, "a", "equals-ignore-case match pattern must be"),
        ({"a": [{"exists": "yes"}]}, "a", "exists match pattern must be either true or false."),
        ({"a": [{"anything-but": None}]}, "a", "Value of anything-but must be an array or"),
        ({"a": [{"anything-but": True}]}, "a", "Value of anything-but must be an array or"),
        ({"a": [{"anything-but": ["x", None]}]}, "a", "start|null|boolean is not supported"),
        ({"a": [{"anything-but": ["x", 1]}]}, "a", "mixed type is not supported"),
        ({"a": [{"anything-but": []}]}, "a", "at least one string or number"),
        ({"a": [{"anything-but": {}}]}, "a", "Anything-But expression name not found"),
        ({"a": [{"anything-but": {"prefix": ""}}]}, "a", "Null prefix/suffix not allowed"),
        ({"a": [{"anything-but": {"suffix": ["x", ""]}}]}, "a", "Null prefix/suffix not allowed"),
        ({"a": [{"anything-but": {"numeric": [">", 1]}}]}, "a", "Unsupported anything-but pattern"),
        ({"a": [{"anything-but": {"equals-ignore-case": 1}}]}, "a", "number|start|null|boolean"),
        ({"a": [{"anything-but": {"wildcard": "a**"}}]}, "a", "Consecutive wildcard characters"),
        ({"a": [{"anything-but": {"prefix": []}}]}, "a", "needs at least one string"),
        ({"a": [{"cidr": "bad"}]}, "a", "Malformed CIDR, one '/' required"),
        ({"a": [{"cidr": "10.0.0.0/8/8"}]}, "a", "Malformed CIDR, one '/' required"),
        ({"a": [{"cidr": "10.0.0.0/x"}]}, "a", "Malformed CIDR, mask bits must be an integer"),
        ({"a": [{"cidr": "10.0.0.0/-1"}]}, "a", "mask bits must not be negative"),
        ({"a": [{"cidr": "xx.1/8"}]}, "a", "Nonstandard IP address: xx.1"),
        ({"a": [{"cidr": "300.0.0.0/8"}]}, "a", "Invalid IP address: 300.0.0.0"),
        ({"a": [{"cidr": "10.0.0.0/33"}]}, "a", "IPv4 mask bits must be < 32"),
        ({"a": [{"cidr": "10.0.0.1/32"}]}, "a", 'list it as a plain value: ["10.0.0.1"]'),
        ({"a": [{"cidr": "2001:db8::1/128"}]}, "a", "IPv6 mask bits must be < 128"),
        ({"a": [{"cidr": ["10.0.0.0/8"]}]}, "a", "cidr match pattern must be a string"),
        ({"a": [{"wildcard": "a**b"}]}, "a", "Consecutive wildcard characters at pos 2"),
        ({"a": [{"wildcard": "é**"}]}, "a", "Consecutive wildcard characters at pos 3"),
        ({"a": [{"wildcard": r"a\qb"}]}, "a", "Invalid escape character at pos 2"),
        ({"a": [{"wildcard": 1}]}, "a", "wildcard match pattern must be a string"),
        ({"x": {"$or": []}}, "x.$or", "There must have at least 2 Objects in $or relationship."),
        ({"$or": [{"a": [1]}]}, "$or", "at least 2 Objects"),
        ({"$or": {"a": [1]}}, "$or", "It must be an Array followed with $or."),
        ({"$or": [{"a": [1]}, "b"]}, "$or[1]", "Only JSON object is allowed in array of $or"),
        ({"$or": [{"a": [1]}, {}]}, "$or[1]", "Empty objects are not allowed"),
        ({"$or": [{"a": [1]}, {"prefix": ["x"]}]}, "prefix", "prefix is Ruler reserved fieldName"),
        ({"$or": [{"a": [1]}, {"b": {">=": [1]}}]}, "b.>=", ">= is Ruler reserved fieldName"),
        ({"a": [float("nan")]}, "a", "finite"),
    ],
)
def test_invalid_pattern_names_path(pattern: Any, field: str, words: str) -> None:
    with pytest.raises(PatternError) as info:
        compile(pattern)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")
    assert words in str(info.value)
    assert isinstance(info.value, ValidationError)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("this is not json", "not valid JSON"),
        ("{'bad': 'quotes'}", "not valid JSON"),
        ('["a", "list"]', "must be a JSON object"),
        ("42", "must be a JSON object"),
    ],
)
def test_invalid_text(text: str, words: str) -> None:
    with pytest.raises(PatternError, match=words):
        compile(text)


def test_too_many_or_combinations_are_refused() -> None:
    branch = {"$or": [{"a": [i]} for i in range(40)]}
    pattern = {"x": branch, "y": branch}
    with pytest.raises(PatternError, match="Rule is too complex; its \\$or arrays expand"):
        compile(pattern)
