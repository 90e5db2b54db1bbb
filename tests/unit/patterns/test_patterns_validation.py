"""Invalid patterns are rejected with a message that names the path and the fix."""

from __future__ import annotations

from typing import Any

import pytest

from triggerfish.errors import PatternError, ValidationError
from triggerfish.patterns import compile


@pytest.mark.parametrize(
    ("pattern", "field", "words"),
    [
        ({"detail": {"count": 42}}, "detail.count", "must be an object or an array"),
        ({"resources": []}, "resources", "empty arrays are not allowed"),
        ({"detail": {}}, "detail", "empty objects"),
        ({"a": [{"NUMERIC": ["=", 5]}]}, "a", 'write "numeric"'),
        ({"a": [{"bogus": 1}]}, "a", "unrecognized operator"),
        ({"a": [{"prefix": "x", "suffix": "y"}]}, "a", "exactly one operator"),
        ({"a": [["x"]]}, "a", "cannot be nested"),
        ({"a": [{"numeric": 10}]}, "a", "needs an array"),
        ({"a": [{"numeric": [">", 0, ">", 1]}]}, "a", 'bad "numeric" range operator >'),
        ({"a": [{"numeric": [">", 0, "<"]}]}, "a", "has no number after it"),
        ({"a": [{"numeric": ["=", 1, "<", 5]}]}, "a", "exactly one number"),
        ({"a": [{"numeric": ["!=", 1]}]}, "a", 'bad "numeric" operator'),
        ({"a": [{"numeric": [">", "1"]}]}, "a", "must be a number"),
        ({"a": [{"numeric": [">", 5, "<", 5]}]}, "a", "range is empty"),
        ({"a": [{"numeric": [">", True]}]}, "a", "must be a number"),
        ({"a": [{"prefix": 1}]}, "a", '"prefix" needs a string'),
        ({"a": [{"suffix": [".png"]}]}, "a", '"suffix" needs a string'),
        ({"a": [{"equals-ignore-case": ["x"]}]}, "a", "needs a string"),
        ({"a": [{"exists": "yes"}]}, "a", "true or false"),
        ({"a": [{"anything-but": None}]}, "a", '"anything-but" needs'),
        ({"a": [{"anything-but": True}]}, "a", '"anything-but" needs'),
        ({"a": [{"anything-but": ["x", None]}]}, "a", "only strings and numbers"),
        ({"a": [{"anything-but": []}]}, "a", "must not be empty"),
        ({"a": [{"anything-but": {"prefix": ""}}]}, "a", "must not be empty"),
        ({"a": [{"anything-but": {"numeric": [">", 1]}}]}, "a", "does not take"),
        ({"a": [{"anything-but": {"equals-ignore-case": 1}}]}, "a", "array of strings"),
        ({"a": [{"cidr": "bad"}]}, "a", 'one "/"'),
        ({"a": [{"cidr": "10.0.0.0/x"}]}, "a", "must be an integer"),
        ({"a": [{"cidr": "xx.1/8"}]}, "a", "nonstandard IP address: xx.1"),
        ({"a": [{"cidr": "10.0.0.0/33"}]}, "a", "at most 32"),
        ({"a": [{"wildcard": "a**b"}]}, "a", "consecutive wildcard characters at position 2"),
        ({"a": [{"wildcard": r"a\qb"}]}, "a", "invalid escape"),
        ({"a": [{"wildcard": 1}]}, "a", "needs a string"),
        ({"x": {"$or": []}}, "x.$or", "non-empty array"),
        ({"$or": [{"a": [1]}, "b"]}, "$or[1]", "non-empty object"),
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
    with pytest.raises(PatternError, match="too many combinations"):
        compile(pattern)
