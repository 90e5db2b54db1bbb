"""The pick of a weighted alias and the rules an alias's routing and rollback follow:
pure, no store."""

from __future__ import annotations

import random

import pytest

from triggerfish.control.aliases import Routing, parse_routing
from triggerfish.control.releases import RollbackRule
from triggerfish.errors import ValidationError


@pytest.mark.parametrize("weight", [0.1, 0.5, 0.02])
def test_the_additional_version_takes_its_weight_of_the_picks(weight: float) -> None:
    routing = Routing("3", "4", weight)
    draw = random.Random(20261207).random

    picks = [routing.pick(draw) for _ in range(10_000)]

    share = picks.count("4") / len(picks)
    assert abs(share - weight) < 0.02
    assert set(picks) == {"3", "4"}


def test_without_an_additional_version_or_weight_every_pick_is_the_main_one() -> None:
    draw = random.Random(1).random
    assert {Routing("3").pick(draw) for _ in range(1000)} == {"3"}
    assert {Routing("3", "4", 0.0).pick(draw) for _ in range(1000)} == {"3"}


def test_a_routing_names_one_version_and_its_weight() -> None:
    assert parse_routing({"4": 0.1}) == ("4", 0.1)
    assert parse_routing({"4": 0}) == ("4", 0.0)
    assert parse_routing({}) is None
    assert parse_routing(None) is None


@pytest.mark.parametrize(
    ("routing", "message"),
    [
        ({"4": 1.0}, r"weight of version 4 must be a number from 0 up to, not including, 1"),
        ({"4": -0.1}, "got -0.1"),
        ({"4": float("nan")}, "weight of version 4"),
        ({"4": "a tenth"}, "got 'a tenth'"),
        ({"4": True}, "got True"),
        ({"4": 0.1, "5": 0.1}, "one more version at most; got 2"),
    ],
)
def test_a_routing_out_of_bounds_is_refused_with_what_to_give(
    routing: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        parse_routing(routing)


def test_a_rollback_rule_is_read_from_its_text_and_its_object() -> None:
    assert RollbackRule.parse("error_rate>0.05 over 5m") == RollbackRule(0.05, 300.0, 20)
    assert RollbackRule.parse(" error_rate > 0.5 over 30s", min_invocations=3) == RollbackRule(
        0.5, 30.0, 3
    )
    assert RollbackRule.from_json({"max_error_rate": 0.1, "window": "1h"}) == RollbackRule(
        0.1, 3600.0, 20
    )
    rule = RollbackRule.from_json({"on": "error_rate>0.2 over 10", "min_invocations": 5})
    assert RollbackRule.from_json(rule.to_json()) == rule == RollbackRule(0.2, 10.0, 5)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("errors>5", "is not a rule: write it as"),
        ("error_rate>lots over 5m", "'lots' is not a number"),
        ("error_rate>1.5 over 5m", "from 0 up to, not including, 1"),
        ("error_rate>0.05 over soon", "'soon' is not a duration"),
        ("error_rate>0.05 over 0s", "more than 0 and at most 7 days"),
    ],
)
def test_a_rollback_rule_that_does_not_read_says_how_to_write_it(text: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RollbackRule.parse(text)


def test_a_rollback_object_names_what_it_lacks() -> None:
    with pytest.raises(ValidationError, match=r"give max_error_rate .* unknown: rate"):
        RollbackRule.from_json({"rate": 0.1, "window": "5m"})
    with pytest.raises(ValidationError, match="at least 1; got 0"):
        RollbackRule.from_json({"max_error_rate": 0.1, "window": "5m", "min_invocations": 0})
