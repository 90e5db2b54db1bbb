"""Many patterns over one stream of events, matched together.

A ``RuleSet`` holds the patterns (rules) of every trigger on one topic and gives,
for an event, the ids of the rules that match. It does not try the rules one by
one. Each alternative of each rule (``$or`` expanded) is filed under one of its
fields that lists plain values, chosen as the one whose values the fewest other
rules share: an index ``path -> value -> [(rule, remaining checks)]``. For an
event, each indexed path is read once, its values are looked up, and only the
rules found there run their remaining checks. Rules without any plain-value field
are checked one by one.

So with rules of the same shape that differ in at least one plain value (the
usual case: each trigger names its source, type or subject) an event costs about
one index lookup plus the checks of the rules it really selects, however many
rules there are. The index is rebuilt lazily, on the first ``match`` after
``add`` or ``remove``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from triggerfish.patterns._compiler import Alternative, Field
from triggerfish.patterns._paths import Getter, make_getter
from triggerfish.patterns._values import FALSE_KEY, TRUE_KEY
from triggerfish.patterns.pattern import Matcher, Pattern, all_of, compile

_Entry = tuple[str, Matcher | None]
_Probe = Callable[[Mapping[str, Any], set[str]], None]


class RuleSet:
    """The rules of one topic: ``add``, ``remove``, and ``match`` an event to rule ids."""

    def __init__(self) -> None:
        self._rules: dict[str, Pattern] = {}
        self._probes: list[_Probe] = []
        self._scan: list[tuple[str, Matcher]] = []
        self._dirty = False

    def add(self, rule_id: str, pattern: Pattern | Mapping[str, Any] | str) -> None:
        """Add a rule, or replace the rule of that id. Raises ``PatternError``."""
        compiled = pattern if isinstance(pattern, Pattern) else compile(pattern)
        self._rules[rule_id] = compiled
        self._dirty = True

    def remove(self, rule_id: str) -> None:
        """Remove a rule; removing an unknown id does nothing."""
        if self._rules.pop(rule_id, None) is not None:
            self._dirty = True

    def get(self, rule_id: str) -> Pattern | None:
        return self._rules.get(rule_id)

    def __len__(self) -> int:
        return len(self._rules)

    def __contains__(self, rule_id: object) -> bool:
        return rule_id in self._rules

    def match(self, event: Mapping[str, Any]) -> set[str]:
        """The ids of the rules that ``event`` matches."""
        if self._dirty:
            self._rebuild()
        matched: set[str] = set()
        for probe in self._probes:
            probe(event, matched)
        for rule_id, check in self._scan:
            if rule_id not in matched and check(event):
                matched.add(rule_id)
        return matched

    # -- index -----------------------------------------------------------------------------

    def _rebuild(self) -> None:
        alternatives: list[tuple[str, Alternative]] = [
            (rule_id, alternative)
            for rule_id, pattern in self._rules.items()
            for alternative in pattern.alternatives
        ]
        shared: Counter[tuple[tuple[str, ...], str, Any]] = Counter()
        for _, alternative in alternatives:
            for field in alternative:
                if field.index is not None:
                    kind, keys = field.index
                    for key in keys:
                        shared[field.keys, kind, key] += 1

        def crowding(field: Field) -> tuple[int, int]:
            assert field.index is not None
            kind, keys = field.index
            return sum(shared[field.keys, kind, key] for key in keys), field.cost

        tables: dict[tuple[tuple[str, ...], str], dict[Any, list[_Entry]]] = {}
        scan: list[tuple[str, Matcher]] = []
        for rule_id, alternative in alternatives:
            indexable = [f for f in alternative if f.index is not None]
            if not indexable:
                scan.append((rule_id, all_of([f.check for f in alternative])))
                continue
            chosen = min(indexable, key=crowding)
            assert chosen.index is not None
            kind, keys = chosen.index
            rest = [f.check for f in alternative if f is not chosen]
            entry: _Entry = (rule_id, all_of(rest) if rest else None)
            table = tables.setdefault((chosen.keys, kind), {})
            for key in keys:
                table.setdefault(key, []).append(entry)
        self._probes = [
            _PROBES[kind](make_getter(path), table) for (path, kind), table in tables.items()
        ]
        self._scan = scan
        self._dirty = False


# -- probes: read one path of the event, look its values up, run the rules found --------


def _select(entries: list[_Entry], event: Mapping[str, Any], matched: set[str]) -> None:
    for rule_id, rest in entries:
        if rule_id not in matched and (rest is None or rest(event)):
            matched.add(rule_id)


def _exact_probe(getter: Getter, table: dict[Any, list[_Entry]]) -> _Probe:
    def probe(event: Mapping[str, Any], matched: set[str]) -> None:
        for value in getter(event):
            if value.__class__ is bool:
                value = TRUE_KEY if value else FALSE_KEY
            entries = table.get(value)
            if entries is not None:
                _select(entries, event, matched)

    return probe


def _ignore_case_probe(getter: Getter, table: dict[Any, list[_Entry]]) -> _Probe:
    def probe(event: Mapping[str, Any], matched: set[str]) -> None:
        for value in getter(event):
            if value.__class__ is str:
                entries = table.get(value.lower())
                if entries is not None:
                    _select(entries, event, matched)

    return probe


def _by_length(table: dict[Any, list[_Entry]]) -> list[tuple[int, dict[Any, list[_Entry]]]]:
    levels: dict[int, dict[Any, list[_Entry]]] = {}
    for key, entries in table.items():
        levels.setdefault(len(key), {})[key] = entries
    return sorted(levels.items())


def _prefix_probe(getter: Getter, table: dict[Any, list[_Entry]]) -> _Probe:
    levels = _by_length(table)

    def probe(event: Mapping[str, Any], matched: set[str]) -> None:
        for value in getter(event):
            if value.__class__ is str:
                size = len(value)
                for length, entries_by_prefix in levels:
                    if length > size:
                        break
                    entries = entries_by_prefix.get(value[:length])
                    if entries is not None:
                        _select(entries, event, matched)

    return probe


def _suffix_probe(getter: Getter, table: dict[Any, list[_Entry]]) -> _Probe:
    levels = _by_length(table)

    def probe(event: Mapping[str, Any], matched: set[str]) -> None:
        for value in getter(event):
            if value.__class__ is str:
                size = len(value)
                for length, entries_by_suffix in levels:
                    if length > size:
                        break
                    entries = entries_by_suffix.get(value[size - length :])
                    if entries is not None:
                        _select(entries, event, matched)

    return probe


_PROBES: dict[str, Callable[[Getter, dict[Any, list[_Entry]]], _Probe]] = {
    "exact": _exact_probe,
    "ignore-case": _ignore_case_probe,
    "prefix": _prefix_probe,
    "suffix": _suffix_probe,
}
