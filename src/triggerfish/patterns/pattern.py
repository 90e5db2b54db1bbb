"""One compiled event pattern.

``compile`` validates an EventBridge event pattern (a mapping, or its JSON text)
and returns a ``Pattern`` whose ``matches(event)`` answers for one event. The
pattern is compiled once into closures specialised for its paths and operators,
so ``matches`` does no parsing, no flattening of the event and, in the common
case, no allocation. An empty pattern ``{}`` matches every event.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from triggerfish.errors import PatternError
from triggerfish.patterns._compiler import Alternative, compile_alternatives
from triggerfish.patterns._paths import Check

Matcher = Callable[[Mapping[str, Any]], bool]


def _always(event: Mapping[str, Any]) -> bool:
    return True


def all_of(checks: list[Check]) -> Matcher:
    """A function true when every check holds, checked in order."""
    if not checks:
        return _always
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        c0, c1 = checks

        def all2(event: Mapping[str, Any]) -> bool:
            return c0(event) and c1(event)

        return all2
    if len(checks) == 3:
        c0, c1, c2 = checks

        def all3(event: Mapping[str, Any]) -> bool:
            return c0(event) and c1(event) and c2(event)

        return all3
    if len(checks) == 4:
        c0, c1, c2, c3 = checks

        def all4(event: Mapping[str, Any]) -> bool:
            return c0(event) and c1(event) and c2(event) and c3(event)

        return all4
    if len(checks) == 5:
        c0, c1, c2, c3, c4 = checks

        def all5(event: Mapping[str, Any]) -> bool:
            return c0(event) and c1(event) and c2(event) and c3(event) and c4(event)

        return all5
    items = tuple(checks)

    def all_n(event: Mapping[str, Any]) -> bool:
        # A loop, not any()/all(): no generator is allocated per call.
        for check in items:  # noqa: SIM110
            if not check(event):
                return False
        return True

    return all_n


def _any_of(matchers: list[Matcher]) -> Matcher:
    if len(matchers) == 1:
        return matchers[0]
    items = tuple(matchers)

    def any_n(event: Mapping[str, Any]) -> bool:
        # A loop, not any()/all(): no generator is allocated per call.
        for matcher in items:  # noqa: SIM110
            if matcher(event):
                return True
        return False

    return any_n


class Pattern:
    """A validated, compiled event pattern.

    ``matches(event)`` is true when the event (a JSON-like mapping) satisfies the
    pattern. ``source`` is the pattern as given (parsed from JSON when given as text).
    """

    __slots__ = ("alternatives", "matches", "source")

    source: Mapping[str, Any]
    alternatives: list[Alternative]
    matches: Matcher

    def __init__(self, source: Mapping[str, Any], alternatives: list[Alternative]) -> None:
        self.source = source
        self.alternatives = alternatives
        # An attribute, not a method: the dispatcher calls it for every event, and a
        # plain closure saves the bound-method hop.
        self.matches = _any_of([all_of([f.check for f in alt]) for alt in alternatives])

    def to_json(self) -> str:
        """The pattern as JSON text."""
        return orjson.dumps(self.source).decode()

    def __repr__(self) -> str:
        return f"Pattern({self.to_json()})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Pattern) and self.source == other.source

    def __hash__(self) -> int:
        return hash(self.to_json())


def parse(pattern: Mapping[str, Any] | str | bytes) -> Mapping[str, Any]:
    """The pattern as a mapping; JSON text is parsed. Raises ``PatternError``."""
    if isinstance(pattern, str | bytes):
        try:
            pattern = orjson.loads(pattern)
        except orjson.JSONDecodeError as exc:
            raise PatternError(f"the pattern is not valid JSON: {exc}") from None
    if not isinstance(pattern, Mapping):
        kind = "an array" if isinstance(pattern, list) else type(pattern).__name__
        raise PatternError(
            f'a pattern must be a JSON object like {{"source": ["orders"]}}, got {kind}'
        )
    return pattern


def compile(pattern: Mapping[str, Any] | str | bytes) -> Pattern:
    """Validate ``pattern`` and compile it; raises ``PatternError`` naming the path."""
    source = parse(pattern)
    return Pattern(source, compile_alternatives(source))
