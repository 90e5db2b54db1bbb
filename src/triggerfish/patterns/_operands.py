"""The operand of each operator: checked by EventBridge's rules, then compiled.

Each function takes the operand as the pattern wrote it and a ``fail`` callback that
turns a reason into a ``PatternError`` naming the field path. A reason starts with the
words EventBridge answers for the same mistake (``InvalidEventPatternException``), so
a message a user has met on AWS, or searches for, leads to the same rule; after those
words comes what was found and how to write it instead.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from triggerfish.errors import PatternError
from triggerfish.patterns import _values as v

Fail = Callable[[str], PatternError]

#: Numbers in "numeric" and "anything-but" lie in [-NUMBER_LIMIT, NUMBER_LIMIT] ...
NUMBER_LIMIT = 5_000_000_000
#: ... with at most this many digits after the decimal point.
MAX_DECIMALS = 6

_NUMERIC_USAGE = 'e.g. [">", 0, "<=", 5] or ["=", 3.5]'
_MISSING: Any = object()


def show(value: Any) -> str:
    """A value as the user wrote it in JSON, shortened for objects and arrays."""
    if value is _MISSING:
        return "nothing"
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


def is_number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and (not isinstance(value, float) or math.isfinite(value))
    )


def because(reason: str, detail: str) -> str:
    """AWS's reason followed by Triggerfish's detail, punctuated either way."""
    if reason.endswith("."):
        return f"{reason} {detail[:1].upper()}{detail[1:]}"
    return f"{reason}; {detail}"


def check_number(number: float, fail: Fail) -> None:
    """A number EventBridge can compare: bounded, and with at most six decimals."""
    if not -NUMBER_LIMIT <= number <= NUMBER_LIMIT:
        raise fail(
            because(
                "Value must be between -5.0E9 and 5.0E9, inclusive",
                f"got {number}; numbers in numeric and anything-but are compared within that range",
            )
        )
    text = repr(float(number)) if isinstance(number, float) else str(number)
    exponent = Decimal(text).normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > MAX_DECIMALS:
        raise fail(
            because(
                "Only values upto 6 decimals are supported",
                f"got {number}; round it to six digits after the decimal point",
            )
        )


# -- numeric -------------------------------------------------------------------------------


def numeric(operand: Any, fail: Fail) -> v.Predicate:
    """``["=", n]``, or one lower and/or one upper bound, lower bound first."""
    if not isinstance(operand, list):
        raise fail(
            because(
                "Value of numeric must be an array.",
                f"got {show(operand)}; write operators and numbers, {_NUMERIC_USAGE}",
            )
        )
    items = [*operand, _MISSING, _MISSING, _MISSING, _MISSING]
    operator = items[0]
    if not isinstance(operator, str):
        raise fail(
            because(
                f"Invalid member in numeric match: {show(operator)}",
                f"the array starts with an operator (=, <, <=, > or >=), {_NUMERIC_USAGE}",
            )
        )
    if operator not in ("=", "<", "<=", ">", ">="):
        raise fail(
            because(
                f"Unrecognized numeric range operator: {operator}",
                f"use =, <, <=, > or >=, {_NUMERIC_USAGE}",
            )
        )
    number = items[1]
    _numeric_value("equals" if operator == "=" else operator, number, fail)
    if operator == "=" or operator in ("<", "<="):
        if len(operand) > 2:
            hint = (
                '"=" takes exactly one number, e.g. ["=", 5]'
                if operator == "="
                else f'a range names its lower bound (">" or ">=") first, {_NUMERIC_USAGE}'
            )
            raise fail(because("Too many elements in numeric expression", hint))
        if operator == "=":
            return v.numeric_equal(number)
        return v.numeric_range(None, False, number, operator == "<=")
    if len(operand) == 2:
        return v.numeric_range(number, operator == ">=", None, False)
    upper = items[2]
    if not isinstance(upper, str):
        raise fail(
            because(
                f"Bad value in numeric range: {show(upper)}",
                f'after the lower bound comes "<" or "<=" and a number, {_NUMERIC_USAGE}',
            )
        )
    if upper not in ("<", "<="):
        raise fail(
            because(
                f"Bad numeric range operator: {upper}",
                'a range takes one lower bound (">" or ">=") and then one upper bound '
                f'("<" or "<="), {_NUMERIC_USAGE}',
            )
        )
    top = items[3]
    _numeric_value(upper, top, fail)
    if len(operand) > 4:
        raise fail(
            because(
                "Too many terms in numeric range expression",
                f"a range has at most two operators and two numbers, {_NUMERIC_USAGE}",
            )
        )
    if number >= top:
        raise fail(
            because(
                "Bottom must be less than top",
                f"the lower bound {number} is not below the upper bound {top}",
            )
        )
    return v.numeric_range(number, operator == ">=", top, upper == "<=")


def _numeric_value(operator: str, number: Any, fail: Fail) -> None:
    if not is_number(number):
        raise fail(
            because(
                f"Value of {operator} must be numeric",
                f"got {show(number)}; write a number without quotes, {_NUMERIC_USAGE}",
            )
        )
    check_number(number, fail)


# -- cidr ----------------------------------------------------------------------------------

_IPV4 = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")
_IPV6 = re.compile(r"[0-9a-fA-F:]*:[0-9a-fA-F:]*")
_INTEGER = re.compile(r"[+-]?[0-9]+")


def cidr(operand: Any, fail: Fail) -> v.Predicate:
    """An IPv4 or IPv6 network: an address, one "/" and the mask bits."""
    if not isinstance(operand, str):
        raise fail(
            because(
                "cidr match pattern must be a string",
                f'got {show(operand)}; write one network such as "10.0.0.0/24"',
            )
        )
    address, _, bits = operand.partition("/")
    if "/" in bits or not bits:
        raise fail(
            because(
                "Malformed CIDR, one '/' required",
                f'got "{operand}"; write an address, one "/" and the mask bits, e.g. "10.0.0.0/24"',
            )
        )
    if not _INTEGER.fullmatch(bits):
        raise fail(because("Malformed CIDR, mask bits must be an integer", f'got "{bits}"'))
    if int(bits) < 0:
        raise fail(because("Malformed CIDR, mask bits must not be negative", f'got "{bits}"'))
    if not (_IPV4.fullmatch(address) or _IPV6.fullmatch(address)):
        raise fail(
            because(
                f"Nonstandard IP address: {address}",
                "write an IPv4 address such as 10.0.0.0 or an IPv6 address such as 2001:db8::",
            )
        )
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        raise fail(
            because(f"Invalid IP address: {address}", "each IPv4 part is a number from 0 to 255")
        ) from None
    if int(bits) >= parsed.max_prefixlen:
        raise fail(
            because(
                f"IPv{parsed.version} mask bits must be < {parsed.max_prefixlen}",
                f'got {bits}; to match one address, list it as a plain value: ["{address}"]',
            )
        )
    return v.cidr(ipaddress.ip_network(operand, strict=False))


# -- wildcard ------------------------------------------------------------------------------


def wildcard_parts(text: str, fail: Fail) -> tuple[str, ...]:
    """The literal pieces between the ``*`` of a wildcard (``\\*`` and ``\\\\`` unescaped).

    Positions in messages count UTF-8 bytes from 1, as EventBridge's do.
    """
    parts: list[str] = []
    current: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        position = len(text[:index].encode()) + 1
        if char == "\\":
            following = text[index + 1 : index + 2]
            if following not in ("*", "\\"):
                raise fail(
                    because(
                        f"Invalid escape character at pos {position}",
                        rf'in "{text}": only \* (a literal star) and \\ (a backslash) are escapes',
                    )
                )
            current.append(following)
            index += 2
            continue
        if char == "*":
            if text[index + 1 : index + 2] == "*":
                raise fail(
                    because(
                        f"Consecutive wildcard characters at pos {position}",
                        f'in "{text}": one * already matches any run of characters',
                    )
                )
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        index += 1
    parts.append("".join(current))
    return tuple(parts)


# -- anything-but --------------------------------------------------------------------------

ANYTHING_BUT_STYLES = ("prefix", "suffix", "equals-ignore-case", "wildcard")
_BUT_VALUE = "Value of anything-but must be an array or single string/number value."
_BUT_WORD = {
    "prefix": "prefix/suffix match pattern must be a string",
    "suffix": "prefix/suffix match pattern must be a string",
    "wildcard": "wildcard match pattern must be a string",
    "equals-ignore-case": (
        "Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported."
    ),
}


def anything_but(operand: Any, fail: Fail) -> tuple[v.Predicate, tuple[tuple[str, ...], ...]]:
    """The predicate, and the wildcards it holds as pieces between ``*`` (they count
    towards the complexity of the field)."""
    if isinstance(operand, Mapping):
        return _anything_but_style(operand, fail)
    if isinstance(operand, list):
        strings = numbers = 0
        for item in operand:
            if isinstance(item, str):
                strings += 1
            elif is_number(item):
                check_number(item, fail)
                numbers += 1
            else:
                raise fail(
                    because(
                        "Inside anything but list, start|null|boolean is not supported.",
                        f"got {show(item)}; list only strings, or only numbers",
                    )
                )
        if not (strings and not numbers) and not (numbers and not strings):
            raise fail(
                because(
                    "Inside anything but list, either all values are number or string, "
                    "mixed type is not supported",
                    "list only strings or only numbers, the type the field holds "
                    "(a string never equals a number)"
                    if operand
                    else "list at least one string or number",
                )
            )
        return v.anything_but(frozenset(operand)), ()
    if isinstance(operand, str) or is_number(operand):
        if not isinstance(operand, str):
            check_number(operand, fail)
        return v.anything_but(frozenset([operand])), ()
    raise fail(
        because(
            _BUT_VALUE,
            f"got {show(operand)}; write a string, a number, an array of them, or an object with "
            'one of "prefix", "suffix", "equals-ignore-case" or "wildcard"',
        )
    )


def _anything_but_style(
    operand: Mapping[str, Any], fail: Fail
) -> tuple[v.Predicate, tuple[tuple[str, ...], ...]]:
    if not operand:
        raise fail(
            because(
                "Anything-But expression name not found",
                'name one of "prefix", "suffix", "equals-ignore-case" or "wildcard" in it',
            )
        )
    if len(operand) > 1:
        raise fail(
            because(
                "Only one key allowed in match expression",
                f"anything-but got {', '.join(map(show, operand))}; use one of them",
            )
        )
    ((style, inner),) = operand.items()
    if style not in ANYTHING_BUT_STYLES:
        raise fail(
            because(
                f"Unsupported anything-but pattern: {style}",
                'anything-but takes a value, or "prefix", "suffix", "equals-ignore-case" or '
                '"wildcard"',
            )
        )
    if not (isinstance(inner, str | list) or is_number(inner)):
        raise fail(
            because(_BUT_VALUE, f'got {show(inner)}; "{style}" here takes a string or strings')
        )
    words = inner if isinstance(inner, list) else [inner]
    for word in words:
        if not isinstance(word, str):
            raise fail(because(_BUT_WORD[style], f"got {show(word)}; use strings only"))
        if style in ("prefix", "suffix") and not word:
            raise fail(
                because(
                    "Null prefix/suffix not allowed",
                    f"an empty {style} would exclude every string",
                )
            )
    if not words:
        raise fail(f'anything-but / "{style}" needs at least one string, got an empty array')
    if style == "equals-ignore-case":
        return v.negate(v.equals_ignore_case(words)), ()
    if style == "wildcard":
        globs = tuple(wildcard_parts(w, fail) for w in words)
        return v.negate(v.any_of([v.wildcard(parts) for parts in globs])), globs
    affixes = tuple(words)
    return v.negate(v.prefix(affixes) if style == "prefix" else v.suffix(affixes)), ()
