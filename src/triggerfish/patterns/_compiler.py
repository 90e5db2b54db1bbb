"""Validating an event pattern and turning it into field checks.

A pattern becomes a list of *alternatives* (``$or`` expanded), each a list of
``Field`` checks that must all hold. Every rule of EventBridge's language is
checked here, and a broken rule raises ``PatternError`` whose message names the
field path and says what is wrong and what would be right; ``PatternError.field``
holds the path.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from triggerfish.errors import PatternError
from triggerfish.patterns import _values as v
from triggerfish.patterns._paths import Check, make_check

#: Most alternatives one pattern may expand to through nested ``$or``.
MAX_ALTERNATIVES = 1024

OPERATORS = (
    "prefix",
    "suffix",
    "equals-ignore-case",
    "anything-but",
    "numeric",
    "exists",
    "cidr",
    "wildcard",
)

# Cheaper and more selective checks run first, so a non-matching event is dropped early.
_COST = {
    "value": 0,
    "prefix": 1,
    "suffix": 1,
    "equals-ignore-case": 1,
    "exists": 1,
    "numeric": 2,
    "anything-but": 3,
    "cidr": 4,
    "wildcard": 4,
}


@dataclass(frozen=True, slots=True)
class Field:
    """One leaf of a pattern: the values allowed at one path."""

    keys: tuple[str, ...]
    path: str
    check: Check
    cost: int
    #: How a rule set may index this leaf: ``(kind, keys)`` when the leaf uses one kind
    #: of test only, kind being "exact" (plain values, as ``value_key``), "prefix",
    #: "suffix" or "ignore-case" (lowered words); None otherwise.
    index: tuple[str, frozenset[Any]] | None


Alternative = list[Field]
_Fail = Callable[[str], PatternError]


def _fail(path: str, message: str) -> PatternError:
    where = path or "the pattern"
    return PatternError(f"{where}: {message}", field=path or None)


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return f'"{value}"' if isinstance(value, str) else str(value)


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and (not isinstance(value, float) or math.isfinite(value))
    )


def compile_alternatives(pattern: Mapping[str, Any]) -> list[Alternative]:
    alternatives = _object(pattern, (), "")
    for alternative in alternatives:
        alternative.sort(key=lambda field: field.cost)
    return alternatives


def _object(node: Mapping[str, Any], keys: tuple[str, ...], path: str) -> list[Alternative]:
    alternatives: list[Alternative] = [[]]
    for name, value in node.items():
        if not isinstance(name, str):
            raise _fail(path, f"field names must be strings, got {_show(name)}")
        if name == "$or":
            options = _or(value, keys, path)
            alternatives = [a + b for a in alternatives for b in options]
        else:
            child_keys = keys + tuple(name.split("."))
            child_path = f"{path}.{name}" if path else name
            if isinstance(value, Mapping):
                if not value:
                    raise _fail(
                        child_path, "empty objects are not allowed; name the fields to match"
                    )
                nested = _object(value, child_keys, child_path)
                alternatives = [a + b for a in alternatives for b in nested]
            elif isinstance(value, list):
                field = _leaf(value, child_keys, child_path)
                for alternative in alternatives:
                    alternative.append(field)
            else:
                raise _fail(
                    child_path,
                    f"must be an object or an array of values to match, got {_show(value)} "
                    f"(write [{_show(value)}] to match that value)",
                )
        if len(alternatives) > MAX_ALTERNATIVES:
            raise _fail(
                path,
                f"too many combinations of $or (more than {MAX_ALTERNATIVES}); "
                "use fewer or smaller $or arrays",
            )
    return alternatives


def _or(value: Any, keys: tuple[str, ...], path: str) -> list[Alternative]:
    where = f"{path}.$or" if path else "$or"
    if not isinstance(value, list) or not value:
        raise _fail(where, "$or must be a non-empty array of objects, each a pattern")
    options: list[Alternative] = []
    for index, branch in enumerate(value):
        if not isinstance(branch, Mapping) or not branch:
            raise _fail(
                f"{where}[{index}]",
                f"each $or entry must be a non-empty object, got {_show(branch)}",
            )
        options.extend(_object(branch, keys, path))
    return options


class _Leaf:
    """Collects the matchers of one leaf array, merged by kind, before compiling."""

    def __init__(self, keys: tuple[str, ...], path: str) -> None:
        self.keys = keys
        self.path = path
        self.values: set[Any] = set()
        self.prefixes: list[str] = []
        self.prefixes_ic: list[str] = []
        self.suffixes: list[str] = []
        self.suffixes_ic: list[str] = []
        self.ignore_case: list[str] = []
        self.others: list[v.Predicate] = []
        self.exists_true = False
        self.exists_false = False
        self.cost = 0

    def fail(self, message: str) -> PatternError:
        return _fail(self.path, message)

    def add(self, item: Any) -> None:
        if item is None or isinstance(item, str | bool) or _is_number(item):
            self.values.add(v.value_key(item))
            return
        if isinstance(item, float):
            raise self.fail(f"numbers must be finite, got {item}")
        if isinstance(item, list):
            raise self.fail("arrays cannot be nested in a pattern; list the values in one array")
        if not isinstance(item, Mapping):
            raise self.fail(f"unsupported value {_show(item)}")
        if len(item) != 1:
            names = ", ".join(f'"{k}"' for k in item) or "none"
            raise self.fail(
                f"each matching object takes exactly one operator, got {names}; "
                "put each operator in its own object in the array"
            )
        ((operator, operand),) = item.items()
        if operator not in OPERATORS:
            hint = ""
            if isinstance(operator, str) and operator.lower() in OPERATORS:
                hint = f' (operators are case-sensitive: write "{operator.lower()}")'
            raise self.fail(
                f"unrecognized operator {_show(operator)}{hint}; "
                f"expected one of {', '.join(OPERATORS)}"
            )
        self.cost = max(self.cost, _COST[operator])
        getattr(self, "op_" + operator.replace("-", "_"))(operand)

    # -- operators ---------------------------------------------------------------------

    def _affix(self, operator: str, operand: Any, plain: list[str], folded: list[str]) -> None:
        if isinstance(operand, str):
            plain.append(operand)
            return
        if (
            isinstance(operand, Mapping)
            and len(operand) == 1
            and isinstance(operand.get("equals-ignore-case"), str)
        ):
            folded.append(operand["equals-ignore-case"])
            return
        raise self.fail(
            f'"{operator}" needs a string, or {{"equals-ignore-case": "..."}}, got {_show(operand)}'
        )

    def op_prefix(self, operand: Any) -> None:
        self._affix("prefix", operand, self.prefixes, self.prefixes_ic)

    def op_suffix(self, operand: Any) -> None:
        self._affix("suffix", operand, self.suffixes, self.suffixes_ic)

    def op_equals_ignore_case(self, operand: Any) -> None:
        if not isinstance(operand, str):
            raise self.fail(f'"equals-ignore-case" needs a string, got {_show(operand)}')
        self.ignore_case.append(operand)

    def op_exists(self, operand: Any) -> None:
        if not isinstance(operand, bool):
            raise self.fail(f'"exists" needs true or false, got {_show(operand)}')
        if operand:
            self.exists_true = True
        else:
            self.exists_false = True

    def op_numeric(self, operand: Any) -> None:
        self.others.append(_numeric(operand, self.fail))

    def op_cidr(self, operand: Any) -> None:
        self.others.append(_cidr(operand, self.fail))

    def op_wildcard(self, operand: Any) -> None:
        if not isinstance(operand, str):
            raise self.fail(f'"wildcard" needs a string, got {_show(operand)}')
        self.others.append(v.wildcard(_wildcard_parts(operand, self.fail)))

    def op_anything_but(self, operand: Any) -> None:
        self.others.append(_anything_but(operand, self.fail))

    # -- result ------------------------------------------------------------------------

    def field(self) -> Field:
        predicates: list[v.Predicate] = []
        if self.values:
            predicates.append(v.exact(frozenset(self.values)))
        if self.prefixes:
            predicates.append(v.prefix(tuple(self.prefixes)))
        if self.prefixes_ic:
            predicates.append(v.prefix_ignore_case(tuple(self.prefixes_ic)))
        if self.suffixes:
            predicates.append(v.suffix(tuple(self.suffixes)))
        if self.suffixes_ic:
            predicates.append(v.suffix_ignore_case(tuple(self.suffixes_ic)))
        if self.ignore_case:
            predicates.append(v.equals_ignore_case(self.ignore_case))
        predicates.extend(self.others)
        scalar = v.always if self.exists_true else v.any_of(predicates)
        return Field(
            keys=self.keys,
            path=self.path,
            check=make_check(self.keys, scalar, self.exists_false),
            cost=self.cost,
            index=self._index(),
        )

    def _index(self) -> tuple[str, frozenset[Any]] | None:
        if self.exists_true or self.exists_false or self.others:
            return None
        kinds = [
            ("exact", frozenset(self.values)),
            ("prefix", frozenset(self.prefixes)),
            ("suffix", frozenset(self.suffixes)),
            ("ignore-case", frozenset(w.lower() for w in self.ignore_case)),
            ("mixed", frozenset(self.prefixes_ic + self.suffixes_ic)),
        ]
        used = [kind for kind in kinds if kind[1]]
        if len(used) != 1 or used[0][0] == "mixed":
            return None
        return used[0]


def _leaf(items: list[Any], keys: tuple[str, ...], path: str) -> Field:
    if not items:
        raise _fail(path, "empty arrays are not allowed; list at least one value or operator")
    leaf = _Leaf(keys, path)
    for item in items:
        leaf.add(item)
    return leaf.field()


# -- operands ------------------------------------------------------------------------------

_LOWER = {">": False, ">=": True}
_UPPER = {"<": False, "<=": True}


def _numeric(operand: Any, fail: _Fail) -> v.Predicate:
    usage = 'e.g. [">", 0, "<=", 5] or ["=", 3.5]'
    if not isinstance(operand, list) or not operand:
        raise fail(f'"numeric" needs an array of operators and numbers, {usage}')
    if len(operand) % 2:
        raise fail(f'"numeric" operator {_show(operand[-1])} has no number after it, {usage}')
    pairs = [(operand[i], operand[i + 1]) for i in range(0, len(operand), 2)]
    for operator, number in pairs:
        if operator not in ("=", *_LOWER, *_UPPER):
            raise fail(f'bad "numeric" operator {_show(operator)}; use =, <, <=, > or >=, {usage}')
        if not _is_number(number):
            raise fail(f'"numeric" value of {operator} must be a number, got {_show(number)}')
    if pairs[0][0] == "=":
        if len(pairs) != 1:
            raise fail('"numeric" with "=" takes exactly one number, e.g. ["=", 5]')
        return v.numeric_equal(pairs[0][1])
    if len(pairs) > 2:
        raise fail(f'"numeric" takes at most one lower and one upper bound, {usage}')
    low: float | None = None
    high: float | None = None
    low_inclusive = high_inclusive = False
    for operator, number in pairs:
        if operator in _LOWER and low is None:
            low, low_inclusive = number, _LOWER[operator]
        elif operator in _UPPER and high is None:
            high, high_inclusive = number, _UPPER[operator]
        else:
            raise fail(
                f'bad "numeric" range operator {operator}: a range takes one lower bound '
                f'(">" or ">=") and one upper bound ("<" or "<="), {usage}'
            )
    if low is not None and high is not None and (low > high or (low == high)):
        raise fail(f'"numeric" range is empty: the lower bound {low} is not below {high}')
    return v.numeric_range(low, low_inclusive, high, high_inclusive)


def _cidr(operand: Any, fail: _Fail) -> v.Predicate:
    if not isinstance(operand, str):
        raise fail(f'"cidr" needs a string like "10.0.0.0/24", got {_show(operand)}')
    if operand.count("/") != 1:
        raise fail(f'malformed "cidr" {operand!r}: write an address, one "/" and mask bits')
    address, bits = operand.split("/")
    if not bits.isdigit():
        raise fail(f'malformed "cidr" {operand!r}: the mask bits must be an integer')
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        raise fail(f'"cidr" has a nonstandard IP address: {address}') from None
    if int(bits) > parsed.max_prefixlen:
        raise fail(
            f'"cidr" {operand!r} has {bits} mask bits; IPv{parsed.version} allows at most '
            f"{parsed.max_prefixlen}"
        )
    return v.cidr(ipaddress.ip_network(operand, strict=False))


def _wildcard_parts(text: str, fail: _Fail) -> tuple[str, ...]:
    parts: list[str] = []
    current: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\":
            following = text[index + 1 : index + 2]
            if following not in ("*", "\\"):
                raise fail(
                    f'"wildcard" {text!r} has an invalid escape at position {index}: '
                    r"only \* (a literal star) and \\ (a backslash) are allowed"
                )
            current.append(following)
            index += 2
            continue
        if char == "*":
            if text[index + 1 : index + 2] == "*":
                raise fail(
                    f'"wildcard" {text!r} has consecutive wildcard characters at position '
                    f"{index + 1}; one * already matches any run of characters"
                )
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        index += 1
    parts.append("".join(current))
    return tuple(parts)


_BUT_STYLES = ("prefix", "suffix", "equals-ignore-case", "wildcard")


def _anything_but(operand: Any, fail: _Fail) -> v.Predicate:
    usage = (
        'a string, a number, an array of them, or an object with one of "prefix", '
        '"suffix", "equals-ignore-case" or "wildcard"'
    )
    if isinstance(operand, str) or _is_number(operand):
        return v.anything_but(frozenset([operand]))
    if isinstance(operand, list):
        if not operand:
            raise fail('"anything-but" array must not be empty')
        for item in operand:
            if not (isinstance(item, str) or _is_number(item)):
                raise fail(
                    f'inside an "anything-but" array only strings and numbers are allowed, '
                    f"got {_show(item)}"
                )
        return v.anything_but(frozenset(operand))
    if not isinstance(operand, Mapping) or len(operand) != 1:
        raise fail(f'"anything-but" needs {usage}, got {_show(operand)}')
    ((style, inner),) = operand.items()
    if style not in _BUT_STYLES:
        raise fail(f'"anything-but" does not take {_show(style)}; it needs {usage}')
    words = inner if isinstance(inner, list) else [inner]
    if not words or not all(isinstance(w, str) for w in words):
        raise fail(
            f'"anything-but" / "{style}" needs a string or an array of strings, got {_show(inner)}'
        )
    if style == "equals-ignore-case":
        return v.negate(v.equals_ignore_case(words))
    if style == "wildcard":
        return v.negate(v.any_of([v.wildcard(_wildcard_parts(w, fail)) for w in words]))
    if any(w == "" for w in words):
        raise fail(
            f'"anything-but" / "{style}" must not be empty: an empty {style} would exclude '
            "every string"
        )
    affixes = tuple(words)
    return v.negate(v.prefix(affixes) if style == "prefix" else v.suffix(affixes))
