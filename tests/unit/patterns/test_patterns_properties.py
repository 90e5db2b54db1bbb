"""Laws the pattern language must obey for every pattern and event (hypothesis)."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from triggerfish.errors import PatternError
from triggerfish.patterns import RuleSet, compile

words = st.text(alphabet="abAB.", max_size=4)
numbers = st.integers(-3, 3) | st.sampled_from([0.5, -1.5, 2.0])
scalars = words | numbers | st.booleans() | st.none()
values = scalars | st.lists(scalars, max_size=3)


def _wildcards() -> st.SearchStrategy[str]:
    pieces = st.lists(st.text(alphabet="ab.", max_size=2), min_size=1, max_size=4)
    return pieces.map("*".join).filter(lambda glob: "**" not in glob)


operators = st.one_of(
    scalars,
    words.map(lambda w: {"prefix": w}),
    words.map(lambda w: {"suffix": w}),
    words.map(lambda w: {"prefix": {"equals-ignore-case": w}}),
    words.map(lambda w: {"equals-ignore-case": w}),
    (st.lists(words, min_size=1, max_size=3) | st.lists(numbers, min_size=1, max_size=3)).map(
        lambda xs: {"anything-but": xs}
    ),
    words.filter(bool).map(lambda w: {"anything-but": {"prefix": w}}),
    _wildcards().map(lambda w: {"wildcard": w}),
    st.booleans().map(lambda b: {"exists": b}),
    st.tuples(st.integers(-3, 0), st.integers(1, 3)).map(
        lambda t: {"numeric": [">", t[0], "<=", t[1]]}
    ),
    numbers.map(lambda n: {"numeric": ["=", n]}),
)
leaves = st.lists(operators, min_size=1, max_size=3)
paths = st.sampled_from(["a", "b", "c.d", "c.e"])
simple_patterns = st.dictionaries(paths, leaves, min_size=1, max_size=3)
patterns = simple_patterns | st.tuples(simple_patterns, simple_patterns, simple_patterns).map(
    lambda t: {**t[0], "$or": [t[1], t[2]]}
)


def _within_limits(*patterns: dict[str, Any]) -> bool:
    """False for a generated pattern whose wildcards are too complex to accept."""
    for pattern in patterns:
        try:
            compile(pattern)
        except PatternError as exc:
            if "Rule is too complex" not in str(exc):
                raise
            return False
    return True


events = st.fixed_dictionaries(
    {},
    optional={
        "a": values,
        "b": values,
        "c": st.fixed_dictionaries({}, optional={"d": values, "e": values})
        | st.lists(st.fixed_dictionaries({}, optional={"d": values}), max_size=2),
    },
)


@given(simple_patterns, simple_patterns, events)
def test_or_matches_exactly_when_either_side_does(
    left: dict[str, Any], right: dict[str, Any], event: dict[str, Any]
) -> None:
    assume(_within_limits({"$or": [left, right]}))
    either = compile({"$or": [left, right]}).matches(event)
    assert either == (compile(left).matches(event) or compile(right).matches(event))


@given(simple_patterns, simple_patterns, events)
def test_fields_of_one_pattern_all_must_hold(
    left: dict[str, Any], right: dict[str, Any], event: dict[str, Any]
) -> None:
    combined = {"p": left, "q": right}
    assume(_within_limits(combined))
    doubled = {"p": event, "q": event}
    assert compile(combined).matches(doubled) == (
        compile(left).matches(event) and compile(right).matches(event)
    )


@given(
    st.lists(words, min_size=1, max_size=4) | st.lists(numbers, min_size=1, max_size=4), st.data()
)
def test_anything_but_never_matches_a_member(excluded: list[Any], data: st.DataObject) -> None:
    pattern = compile({"v": [{"anything-but": excluded}]})
    member = data.draw(st.sampled_from(excluded))
    assert not pattern.matches({"v": member})
    other = data.draw(scalars)
    same = any(type(other) is not bool and other == x and type(x) is not bool for x in excluded)
    if not same:
        assert pattern.matches({"v": other})


@given(st.lists(scalars, min_size=1, max_size=4), scalars)
def test_exact_values_match_by_value_and_type(allowed: list[Any], value: Any) -> None:
    def same(a: Any, b: Any) -> bool:
        return (
            (type(a) is bool) == (type(b) is bool)
            and (isinstance(a, str) == isinstance(b, str))
            and a == b
        )

    expected = any(same(value, x) for x in allowed)
    assert compile({"v": allowed}).matches({"v": value}) is expected


@given(leaves, values)
def test_dotted_and_nested_forms_agree(leaf: list[Any], value: Any) -> None:
    assume(_within_limits({"c.d": leaf}))
    nested_event = {"c": {"d": value}}
    dotted_event = {"c.d": value}
    dotted = compile({"c.d": leaf})
    nested = compile({"c": {"d": leaf}})
    assert dotted.matches(nested_event) == nested.matches(nested_event)
    assert dotted.matches(dotted_event) == nested.matches(nested_event)


@given(leaves, scalars, st.lists(scalars, max_size=3))
def test_an_array_matches_when_one_element_does(
    leaf: list[Any], value: Any, others: list[Any]
) -> None:
    assume(_within_limits({"v": leaf}))
    pattern = compile({"v": leaf})
    if pattern.matches({"v": value}):
        assert pattern.matches({"v": [*others, value]})


@given(_wildcards(), st.text(alphabet="ab.", max_size=8))
def test_wildcard_agrees_with_a_regular_expression(glob: str, text: str) -> None:
    regex = ".*".join(re.escape(part) for part in glob.split("*"))
    expected = re.fullmatch(regex, text, flags=re.DOTALL) is not None
    assert compile({"v": [{"wildcard": glob}]}).matches({"v": text}) is expected


@given(st.integers(-5, 5), st.integers(-5, 5), numbers)
def test_numeric_range_is_the_interval(low: int, span: int, value: Any) -> None:
    high = low + abs(span) + 1
    pattern = compile({"v": [{"numeric": [">=", low, "<", high]}]})
    assert pattern.matches({"v": value}) is (low <= value < high)


@settings(max_examples=150)
@given(st.lists(patterns, min_size=1, max_size=8), st.lists(events, min_size=1, max_size=4))
def test_rule_set_gives_exactly_the_patterns_that_match(
    rules: list[dict[str, Any]], batch: list[dict[str, Any]]
) -> None:
    assume(_within_limits(*rules))
    rule_set = RuleSet()
    for index, rule in enumerate(rules):
        rule_set.add(f"r{index}", rule)
    compiled = {f"r{i}": compile(rule) for i, rule in enumerate(rules)}
    for event in batch:
        expected = {rule_id for rule_id, p in compiled.items() if p.matches(event)}
        assert rule_set.match(event) == expected
