"""Predicates on one scalar event value, one per pattern operator.

Each builder takes already validated operands and returns a small closure
``(value) -> bool`` specialised for them, so matching allocates nothing and
branches as little as possible. A value is anything a JSON document holds at
a leaf: ``str``, ``int``, ``float``, ``bool`` or ``None``. Types never mix: the
string ``"1"`` is not the number ``1``, and ``true`` is not ``1`` (Python's
``True == 1`` is kept out by turning booleans into their own keys).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from typing import Any

Predicate = Callable[[Any], bool]


class _BoolKey:
    """Stands for ``true`` or ``false`` in value sets, apart from ``1`` and ``0``."""

    __slots__ = ("value",)

    def __init__(self, value: bool) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "true" if self.value else "false"


TRUE_KEY = _BoolKey(True)
FALSE_KEY = _BoolKey(False)


def value_key(value: Any) -> Any:
    """The hashable key of a scalar value in an exact-match set."""
    if value.__class__ is bool:
        return TRUE_KEY if value else FALSE_KEY
    return value


def always(value: Any) -> bool:
    return True


def never(value: Any) -> bool:
    return False


def exact(keys: frozenset[Any]) -> Predicate:
    """Equal to one of ``keys`` (made with ``value_key``)."""
    if all(k.__class__ is str for k in keys):
        # A non-string never equals a string, so plain membership is exact.
        return keys.__contains__
    has_bool = TRUE_KEY in keys or FALSE_KEY in keys

    if has_bool:

        def exact_any(value: Any) -> bool:
            if value.__class__ is bool:
                value = TRUE_KEY if value else FALSE_KEY
            return value in keys

        return exact_any

    def exact_no_bool(value: Any) -> bool:
        return value.__class__ is not bool and value in keys

    return exact_no_bool


def anything_but(keys: frozenset[Any]) -> Predicate:
    """Present and equal to none of ``keys`` (``null`` and other types pass)."""
    if all(k.__class__ is str for k in keys):

        def but_strings(value: Any) -> bool:
            return value not in keys

        return but_strings

    def but_values(value: Any) -> bool:
        if value.__class__ is bool:
            return True
        return value not in keys

    return but_values


def prefix(prefixes: tuple[str, ...]) -> Predicate:
    def starts(value: Any) -> bool:
        return value.__class__ is str and value.startswith(prefixes)

    return starts


def prefix_ignore_case(prefixes: tuple[str, ...]) -> Predicate:
    lowered = tuple(p.lower() for p in prefixes)

    def starts(value: Any) -> bool:
        return value.__class__ is str and value.lower().startswith(lowered)

    return starts


def suffix(suffixes: tuple[str, ...]) -> Predicate:
    def ends(value: Any) -> bool:
        return value.__class__ is str and value.endswith(suffixes)

    return ends


def suffix_ignore_case(suffixes: tuple[str, ...]) -> Predicate:
    lowered = tuple(s.lower() for s in suffixes)

    def ends(value: Any) -> bool:
        return value.__class__ is str and value.lower().endswith(lowered)

    return ends


def equals_ignore_case(words: Iterable[str]) -> Predicate:
    lowered = frozenset(w.lower() for w in words)

    def equals(value: Any) -> bool:
        return value.__class__ is str and value.lower() in lowered

    return equals


def negate(predicate: Predicate) -> Predicate:
    def not_(value: Any) -> bool:
        return not predicate(value)

    return not_


def any_of(predicates: list[Predicate]) -> Predicate:
    if not predicates:
        return never
    if len(predicates) == 1:
        return predicates[0]
    if len(predicates) == 2:
        first, second = predicates

        def either(value: Any) -> bool:
            return first(value) or second(value)

        return either
    items = tuple(predicates)

    def any_(value: Any) -> bool:
        # A loop, not any()/all(): no generator is allocated per call.
        for predicate in items:  # noqa: SIM110
            if predicate(value):
                return True
        return False

    return any_


# -- numeric ---------------------------------------------------------------------------


def numeric_equal(number: float) -> Predicate:
    def equal(value: Any) -> bool:
        cls = value.__class__
        return (cls is int or cls is float) and value == number

    return equal


def numeric_range(
    low: float | None, low_inclusive: bool, high: float | None, high_inclusive: bool
) -> Predicate:
    """A range with an optional bound on each side, each open or closed."""
    lo = float("-inf") if low is None else low
    hi = float("inf") if high is None else high
    if low_inclusive and high_inclusive:

        def closed(value: Any) -> bool:
            cls = value.__class__
            return (cls is int or cls is float) and lo <= value <= hi

        return closed
    if low_inclusive:

        def closed_open(value: Any) -> bool:
            cls = value.__class__
            return (cls is int or cls is float) and lo <= value < hi

        return closed_open
    if high_inclusive:

        def open_closed(value: Any) -> bool:
            cls = value.__class__
            return (cls is int or cls is float) and lo < value <= hi

        return open_closed

    def open_(value: Any) -> bool:
        cls = value.__class__
        return (cls is int or cls is float) and lo < value < hi

    return open_


# -- cidr --------------------------------------------------------------------------------


def cidr(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> Predicate:
    """An IP address string inside ``network`` (same IP version)."""
    version = network.version
    low = int(network.network_address)
    high = int(network.broadcast_address)
    parse = ipaddress.ip_address

    def inside(value: Any) -> bool:
        if value.__class__ is not str:
            return False
        try:
            address = parse(value)
        except ValueError:
            return False
        return address.version == version and low <= int(address) <= high

    return inside


# -- wildcard ----------------------------------------------------------------------------


def wildcard(parts: tuple[str, ...]) -> Predicate:
    """``parts`` are the literal pieces between ``*``; one piece means no ``*``.

    Matching is linear in practice: the first and last pieces anchor the ends and
    each middle piece is found leftmost, which is optimal for ``*``-only globs and
    never backtracks (no pattern can make it exponential).
    """
    if len(parts) == 1:
        only = parts[0]

        def equal(value: Any) -> bool:
            return value.__class__ is str and value == only

        return equal
    first, last = parts[0], parts[-1]
    middle = parts[1:-1]
    shortest = sum(len(p) for p in parts)
    head = len(first)
    tail = len(last)

    def glob(value: Any) -> bool:
        if value.__class__ is not str or len(value) < shortest:
            return False
        if not value.startswith(first) or not value.endswith(last):
            return False
        position = head
        end = len(value) - tail
        for piece in middle:
            found = value.find(piece, position, end)
            if found < 0:
                return False
            position = found + len(piece)
        return True

    return glob
