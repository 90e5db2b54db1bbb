"""A RuleSet gives exactly the rules whose patterns match, however it indexes them."""

from __future__ import annotations

from typing import Any

import pytest

from triggerfish.errors import PatternError
from triggerfish.patterns import RuleSet, compile

EVENT = {
    "source": "shop/orders",
    "type": "com.shop.order.created",
    "subject": "orders/81723.json",
    "data": {"total": 250, "paid": True, "tier": "Gold", "tags": ["new", "eu"]},
}


def test_match_gives_the_ids_of_matching_rules() -> None:
    rules = RuleSet()
    rules.add("by-source", {"source": ["shop/orders"]})
    rules.add("by-type-prefix", {"type": [{"prefix": "com.shop.order."}]})
    rules.add("by-suffix", {"subject": [{"suffix": ".json"}]})
    rules.add("by-case", {"data": {"tier": [{"equals-ignore-case": "GOLD"}]}})
    rules.add("by-bool", {"data": {"paid": [True]}})
    rules.add("by-number", {"data": {"total": [250.0]}})
    rules.add("by-array", {"data": {"tags": ["eu"]}})
    rules.add("scan-only", {"data": {"total": [{"numeric": [">", 100]}]}})
    rules.add("everything", {})
    rules.add("other-source", {"source": ["shop/returns"]})
    rules.add("bool-is-not-one", {"data": {"paid": [1]}})
    rules.add("wrong-total", {"source": ["shop/orders"], "data": {"total": [1]}})
    rules.add("or-second", {"$or": [{"source": ["x"]}, {"data": {"tier": ["Gold"]}}]})
    assert len(rules) == 13
    assert rules.match(EVENT) == {
        "by-source",
        "by-type-prefix",
        "by-suffix",
        "by-case",
        "by-bool",
        "by-number",
        "by-array",
        "scan-only",
        "everything",
        "or-second",
    }


def test_remove_and_replace_take_effect_on_the_next_match() -> None:
    rules = RuleSet()
    rules.add("a", {"source": ["shop/orders"]})
    rules.add("b", {"source": ["shop/orders"]})
    assert rules.match(EVENT) == {"a", "b"}
    rules.remove("a")
    rules.remove("never-added")
    assert rules.match(EVENT) == {"b"}
    assert "a" not in rules
    rules.add("b", '{"source": ["elsewhere"]}')
    assert rules.match(EVENT) == set()
    assert rules.get("b") == compile({"source": ["elsewhere"]})


def test_precompiled_patterns_are_accepted_and_invalid_ones_refused() -> None:
    rules = RuleSet()
    rules.add("p", compile({"type": [{"prefix": "com."}]}))
    with pytest.raises(PatternError):
        rules.add("bad", {"type": "com.shop"})
    assert "bad" not in rules
    assert rules.match(EVENT) == {"p"}


def test_prefix_index_finds_every_length() -> None:
    rules = RuleSet()
    prefixes = ["", "c", "com.", "com.shop.order.created", "com.shop.order.created.x", "org."]
    for p in prefixes:
        rules.add(p or "empty", {"type": [{"prefix": p}]})
    rules.add("two", {"type": [{"prefix": "zzz"}, {"prefix": "com.s"}]})
    assert rules.match(EVENT) == {"empty", "c", "com.", "com.shop.order.created", "two"}


def test_suffix_index_handles_empty_and_long_suffixes() -> None:
    rules = RuleSet()
    rules.add("empty", {"subject": [{"suffix": ""}]})
    rules.add("json", {"subject": [{"suffix": ".json"}]})
    rules.add("longer", {"subject": [{"suffix": "x/orders/81723.json"}]})
    assert rules.match(EVENT) == {"empty", "json"}


def test_many_rules_of_one_shape_select_the_right_one() -> None:
    rules = RuleSet()
    for i in range(1000):
        rules.add(
            f"r{i}",
            {
                "source": ["shop/orders"],
                "type": [{"prefix": f"com.shop.t{i}."}],
                "data": {"total": [{"numeric": [">", i]}]},
            },
        )
    event: dict[str, Any] = {**EVENT, "type": "com.shop.t7.created"}
    assert rules.match(event) == {"r7"}
    event["data"] = {"total": 5}
    assert rules.match(event) == set()
