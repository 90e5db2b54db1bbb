"""What each operator matches, on events a user would send."""

from __future__ import annotations

from typing import Any

import pytest

from triggerfish.patterns import compile


def matches(pattern: Any, event: Any) -> bool:
    return compile(pattern).matches(event)


@pytest.mark.parametrize(
    ("pattern", "event", "expected"),
    [
        # exact values and their types
        ({"a": ["x"]}, {"a": "x"}, True),
        ({"a": ["x"]}, {"a": "X"}, False),
        ({"a": [1]}, {"a": 1.0}, True),
        ({"a": [1]}, {"a": True}, False),
        ({"a": [True]}, {"a": 1}, False),
        ({"a": [True]}, {"a": True}, True),
        ({"a": [0]}, {"a": False}, False),
        ({"a": ["1"]}, {"a": 1}, False),
        ({"a": [None]}, {"a": None}, True),
        ({"a": [None]}, {}, False),
        ({"a": [None]}, {"a": "null"}, False),
        ({"a": ["x", 2, False]}, {"a": False}, True),
        # arrays in the event: any element
        ({"a": ["x"]}, {"a": ["y", "x"]}, True),
        ({"a": ["x"]}, {"a": [["y"], ["x"]]}, True),
        ({"a": ["x"]}, {"a": []}, False),
        ({"a": {"b": ["x"]}}, {"a": [{"b": "y"}, {"b": "x"}]}, True),
        # nested objects and dotted keys
        ({"a": {"b": {"c": [1]}}}, {"a": {"b": {"c": 1}}}, True),
        ({"a.b.c": [1]}, {"a": {"b": {"c": 1}}}, True),
        ({"a": {"b": {"c": [1]}}}, {"a.b": {"c": 1}}, True),
        ({"a": {"b": {"c": [1]}}}, {"a": {"b.c": 1}}, True),
        ({"a": {"b": ["x"]}}, {"a": "x"}, False),
        ({"a": ["x"]}, {"a": {"b": "x"}}, False),
        # prefix / suffix / equals-ignore-case
        ({"a": [{"prefix": "ord"}]}, {"a": "order"}, True),
        ({"a": [{"prefix": "ord"}]}, {"a": "Order"}, False),
        ({"a": [{"prefix": {"equals-ignore-case": "ORD"}}]}, {"a": "order"}, True),
        ({"a": [{"prefix": "1"}]}, {"a": 12}, False),
        ({"a": [{"suffix": ".png"}]}, {"a": "x.png"}, True),
        ({"a": [{"suffix": {"equals-ignore-case": ".PNG"}}]}, {"a": "x.png"}, True),
        ({"a": [{"equals-ignore-case": "Gold"}]}, {"a": "gOLD"}, True),
        ({"a": [{"equals-ignore-case": "Gold"}]}, {"a": "golden"}, False),
        # anything-but
        ({"a": [{"anything-but": "x"}]}, {"a": "y"}, True),
        ({"a": [{"anything-but": "x"}]}, {"a": "x"}, False),
        ({"a": [{"anything-but": "x"}]}, {}, False),
        ({"a": [{"anything-but": "x"}]}, {"a": None}, True),
        ({"a": [{"anything-but": 1}]}, {"a": True}, True),
        ({"a": [{"anything-but": 1}]}, {"a": 1.0}, False),
        ({"a": [{"anything-but": [1, 2]}]}, {"a": "1"}, True),
        ({"a": [{"anything-but": {"prefix": "in"}}]}, {"a": "init"}, False),
        ({"a": [{"anything-but": {"suffix": ["a", "b"]}}]}, {"a": "xb"}, False),
        ({"a": [{"anything-but": {"equals-ignore-case": "X"}}]}, {"a": "x"}, False),
        ({"a": [{"anything-but": {"wildcard": "*.tmp"}}]}, {"a": "f.tmp"}, False),
        ({"a": [{"anything-but": {"wildcard": "*.tmp"}}]}, {"a": "f.txt"}, True),
        # numeric
        ({"a": [{"numeric": [">", 0, "<=", 5]}]}, {"a": 5}, True),
        ({"a": [{"numeric": [">", 0, "<=", 5]}]}, {"a": 0}, False),
        ({"a": [{"numeric": [">", 0, "<=", 5]}]}, {"a": 0.5}, True),
        ({"a": [{"numeric": [">=", 0, "<", 5]}]}, {"a": 5}, False),
        ({"a": [{"numeric": ["=", 3.5]}]}, {"a": 3.5}, True),
        ({"a": [{"numeric": [">", 0]}]}, {"a": "3"}, False),
        ({"a": [{"numeric": [">", 0]}]}, {"a": True}, False),
        ({"a": [{"numeric": ["<", 0]}]}, {"a": -1e300}, True),
        # exists
        ({"a": [{"exists": True}]}, {"a": None}, True),
        ({"a": [{"exists": True}]}, {"a": {"b": 1}}, False),
        ({"a": [{"exists": True}]}, {"a": []}, False),
        ({"a": [{"exists": False}]}, {"b": 1}, True),
        ({"a": [{"exists": False}]}, {"a": 0}, False),
        ({"a": {"b": [{"exists": False}]}}, {"a": 1}, True),
        ({"a": [{"exists": False}, "x"]}, {"a": "x"}, True),
        # cidr
        ({"ip": [{"cidr": "10.0.0.0/24"}]}, {"ip": "10.0.0.7"}, True),
        ({"ip": [{"cidr": "10.0.0.0/24"}]}, {"ip": "10.0.1.7"}, False),
        ({"ip": [{"cidr": "10.0.0.9/24"}]}, {"ip": "10.0.0.200"}, True),
        ({"ip": [{"cidr": "10.0.0.0/24"}]}, {"ip": "::ffff"}, False),
        ({"ip": [{"cidr": "10.0.0.0/24"}]}, {"ip": "not an ip"}, False),
        ({"ip": [{"cidr": "2001:db8::/32"}]}, {"ip": "2001:db8:ffff::1"}, True),
        # wildcard
        ({"k": [{"wildcard": "a*c"}]}, {"k": "abbbc"}, True),
        ({"k": [{"wildcard": "a*c"}]}, {"k": "ac"}, True),
        ({"k": [{"wildcard": "a*c"}]}, {"k": "acb"}, False),
        ({"k": [{"wildcard": "*/x/*"}]}, {"k": "a/x/b"}, True),
        ({"k": [{"wildcard": "a*b*a"}]}, {"k": "aba"}, True),
        ({"k": [{"wildcard": "a*b*a"}]}, {"k": "ab"}, False),
        ({"k": [{"wildcard": r"a\*c"}]}, {"k": "a*c"}, True),
        ({"k": [{"wildcard": r"a\*c"}]}, {"k": "abc"}, False),
        ({"k": [{"wildcard": r"a\\*"}]}, {"k": "a\\zz"}, True),
        ({"k": [{"wildcard": "*"}]}, {"k": ""}, True),
        ({"k": [{"wildcard": "x*"}]}, {"k": 1}, False),
        # $or
        ({"$or": [{"a": [1]}, {"b": [2]}]}, {"b": 2}, True),
        ({"$or": [{"a": [1]}, {"b": [2]}]}, {"a": 2, "b": 1}, False),
        ({"c": [3], "$or": [{"a": [1]}, {"b": [2]}]}, {"a": 1, "c": 4}, False),
        (
            {"x": {"$or": [{"a": [1]}, {"b": {"$or": [{"c": [1]}, {"d": [1]}]}}]}},
            {"x": {"b": {"d": 1}}},
            True,
        ),
        # the empty pattern
        ({}, {"anything": "at all"}, True),
    ],
)
def test_operator(pattern: Any, event: Any, expected: bool) -> None:
    assert matches(pattern, event) is expected


def test_pattern_from_json_text_matches_like_the_mapping() -> None:
    text = '{"detail": {"state": [{"anything-but": ["stopped"]}]}}'
    assert compile(text).matches({"detail": {"state": "running"}})
    assert not compile(text.encode()).matches({"detail": {"state": "stopped"}})


def test_non_dict_mappings_are_walked_too() -> None:
    from types import MappingProxyType

    event = MappingProxyType({"a": MappingProxyType({"b": "x"})})
    assert compile({"a": {"b": ["x"]}}).matches(event)


def test_pattern_keeps_its_source_and_compares_by_it() -> None:
    pattern = compile({"source": ["orders"]})
    assert pattern.source == {"source": ["orders"]}
    assert pattern == compile('{"source": ["orders"]}')
    assert "orders" in repr(pattern)
