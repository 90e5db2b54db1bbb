"""Validating an event pattern and turning it into field checks.

A pattern becomes a list of *alternatives* (``$or`` expanded), each a list of
``Field`` checks that must all hold. Every rule EventBridge applies when it compiles
a pattern is applied here, structure first and then each operand (``_operands``), and
last the limits on the whole: the size of the pattern, the combinations its ``$or``
expands to, and the complexity of the wildcards of each field (``_complexity``). A
broken rule raises ``PatternError``: the message names the field path, then gives
EventBridge's own reason for the refusal and what would be right; ``PatternError.field``
holds the path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from triggerfish.errors import PatternError
from triggerfish.patterns import _operands as o
from triggerfish.patterns import _values as v
from triggerfish.patterns._complexity import MAX_WILDCARD_COMPLEXITY, wildcard_complexity
from triggerfish.patterns._paths import Check, make_check

#: Most alternatives one pattern may expand to through nested ``$or``.
MAX_ALTERNATIVES = 1024
#: Longest pattern, in characters of compact JSON (the most EventBridge accepts).
MAX_PATTERN_LENGTH = 4096

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

#: Names EventBridge keeps for operators, refused as field names inside ``$or``.
RESERVED_IN_OR = frozenset(
    (
        *OPERATORS,
        "exactly",
        "=",
        "<",
        "<=",
        ">",
        ">=",
        "regex",
        "not-wildcard",
        "not-equals-ignore-case",
        "date-after",
        "date-on-or-after",
        "date-before",
        "date-on-or-before",
        "in-date-range",
        "ip-address-in-range",
        "ip-address-not-in-range",
    )
)

_TOO_COMPLEX = (
    "Rule is too complex - try using fewer wildcard characters or fewer repeating character "
    "sequences after a wildcard character"
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
    #: The wildcards of the leaf (``wildcard`` and ``anything-but`` / ``wildcard``), each
    #: as its pieces between ``*``: they count towards the field's complexity.
    wildcards: tuple[tuple[str, ...], ...] = ()


Alternative = list[Field]


def _fail(path: str, message: str) -> PatternError:
    where = path or "the pattern"
    return PatternError(f"{where}: {message}", field=path or None)


def check_size(pattern: Mapping[str, Any]) -> None:
    """Refuse a pattern longer than EventBridge accepts, measured as compact JSON."""
    try:
        text = orjson.dumps(pattern, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError:
        return  # not JSON-like: the structural checks say what is wrong
    length = len(text.decode())
    if length > MAX_PATTERN_LENGTH:
        raise PatternError(
            f"the pattern is {length} characters long as compact JSON; EventBridge accepts at "
            f"most {MAX_PATTERN_LENGTH} (Member must have length less than or equal to "
            f"{MAX_PATTERN_LENGTH}): split it into several triggers or use prefix, suffix or "
            "wildcard instead of long lists of values"
        )


def compile_alternatives(pattern: Mapping[str, Any]) -> list[Alternative]:
    check_size(pattern)
    alternatives = _object(pattern, (), "", in_or=False)
    _check_wildcards(alternatives)
    for alternative in alternatives:
        alternative.sort(key=lambda field: field.cost)
    return alternatives


def _check_wildcards(alternatives: list[Alternative]) -> None:
    # One field's wildcards are judged together, from every alternative: EventBridge
    # keeps them in one automaton.
    by_keys: dict[tuple[str, ...], dict[int, Field]] = {}
    for alternative in alternatives:
        for field in alternative:
            if field.wildcards:
                by_keys.setdefault(field.keys, {})[id(field)] = field
    for fields in by_keys.values():
        globs = [glob for field in fields.values() for glob in field.wildcards]
        score = wildcard_complexity(globs, MAX_WILDCARD_COMPLEXITY)
        if score > MAX_WILDCARD_COMPLEXITY:
            path = next(iter(fields.values())).path
            raise _fail(
                path,
                o.because(
                    _TOO_COMPLEX,
                    "a value could keep more than "
                    f"{MAX_WILDCARD_COMPLEXITY} partial wildcard matches alive at once; "
                    "use prefix or suffix, or fewer * in this field's wildcards",
                ),
            )


def _object(
    node: Mapping[str, Any], keys: tuple[str, ...], path: str, *, in_or: bool
) -> list[Alternative]:
    alternatives: list[Alternative] = [[]]
    for name, value in node.items():
        if not isinstance(name, str):
            raise _fail(path, f"field names must be strings, got {o.show(name)}")
        if name == "$or":
            options = _or(value, keys, path)
            alternatives = [a + b for a in alternatives for b in options]
        else:
            child_keys = keys + tuple(name.split("."))
            child_path = f"{path}.{name}" if path else name
            if in_or and name in RESERVED_IN_OR:
                raise _fail(
                    child_path,
                    o.because(
                        f"{name} is Ruler reserved fieldName which cannot be used inside $or.",
                        "an operator name cannot be a field name inside $or; "
                        "put the operator in an array, e.g. "
                        f'{{"field": [{{"{name}": ...}}]}}',
                    ),
                )
            if isinstance(value, Mapping):
                if not value:
                    raise _fail(
                        child_path,
                        o.because(
                            "Empty objects are not allowed", "name the fields to match inside it"
                        ),
                    )
                nested = _object(value, child_keys, child_path, in_or=in_or)
                alternatives = [a + b for a in alternatives for b in nested]
            elif isinstance(value, list):
                field = _leaf(value, child_keys, child_path)
                for alternative in alternatives:
                    alternative.append(field)
            else:
                raise _fail(
                    child_path,
                    o.because(
                        f'"{name}" must be an object or an array',
                        f"got {o.show(value)} (write [{o.show(value)}] to match that value)",
                    ),
                )
        if len(alternatives) > MAX_ALTERNATIVES:
            raise _fail(
                path,
                o.because(
                    "Rule is too complex",
                    f"its $or arrays expand to more than {MAX_ALTERNATIVES} combinations of "
                    "fields; use fewer or smaller $or arrays, or list values in one array",
                ),
            )
    return alternatives


def _or(value: Any, keys: tuple[str, ...], path: str) -> list[Alternative]:
    where = f"{path}.$or" if path else "$or"
    if not isinstance(value, list):
        raise _fail(
            where,
            o.because(
                "It must be an Array followed with $or.",
                f"got {o.show(value)}; write an array of at least two objects, each a pattern",
            ),
        )
    options: list[Alternative] = []
    for index, branch in enumerate(value):
        if not isinstance(branch, Mapping):
            raise _fail(
                f"{where}[{index}]",
                o.because(
                    "Only JSON object is allowed in array of $or relationship.",
                    f"got {o.show(branch)}; each entry is a pattern object",
                ),
            )
        if not branch:
            raise _fail(
                f"{where}[{index}]",
                o.because("Empty objects are not allowed", "each $or entry names fields to match"),
            )
        options.extend(_object(branch, keys, path, in_or=True))
    if len(value) < 2:
        raise _fail(
            where,
            o.because(
                "There must have at least 2 Objects in $or relationship.",
                f"got {len(value)}; with one pattern, write its fields without $or",
            ),
        )
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
        self.wildcards: list[tuple[str, ...]] = []
        self.exists_true = False
        self.exists_false = False
        self.cost = 0

    def fail(self, message: str) -> PatternError:
        return _fail(self.path, message)

    def add(self, item: Any) -> None:
        if item is None or isinstance(item, str | bool) or o.is_number(item):
            self.values.add(v.value_key(item))
            return
        if isinstance(item, float):
            raise self.fail(f"numbers must be finite, got {item}")
        if not isinstance(item, Mapping):
            raise self.fail(
                o.because(
                    "Match value must be String, number, true, false, or null",
                    f"got {o.show(item)}; arrays cannot be nested in a pattern, "
                    "list the values in one array",
                )
            )
        if not item:
            raise self.fail(
                o.because(
                    "Match expression name not found",
                    'each object in the array names one operator, e.g. {"prefix": "a"}',
                )
            )
        if len(item) != 1:
            names = ", ".join(map(o.show, item))
            raise self.fail(
                o.because(
                    "Only one key allowed in match expression",
                    f"got {names}; put each operator in its own object in the array",
                )
            )
        ((operator, operand),) = item.items()
        if operator not in OPERATORS:
            hint = f"expected one of {', '.join(OPERATORS)}"
            if isinstance(operator, str) and operator.lower() in OPERATORS:
                hint = f'operators are case-sensitive: write "{operator.lower()}"'
            raise self.fail(o.because(f"Unrecognized match type {operator}", hint))
        self.cost = max(self.cost, _COST[operator])
        getattr(self, "op_" + operator.replace("-", "_"))(operand)

    # -- operators ---------------------------------------------------------------------

    def _affix(self, operator: str, operand: Any, plain: list[str], folded: list[str]) -> None:
        if isinstance(operand, str):
            plain.append(operand)
            return
        if isinstance(operand, Mapping) and operand:
            name = next(iter(operand))
            if name != "equals-ignore-case":
                raise self.fail(
                    o.because(
                        f"Unsupported {operator} pattern: {name}",
                        f'"{operator}" takes a string, or {{"equals-ignore-case": "..."}}',
                    )
                )
            word = operand[name]
            if not isinstance(word, str):
                raise self.fail(
                    o.because(
                        "equals-ignore-case match pattern must be a string",
                        f"got {o.show(word)}",
                    )
                )
            if len(operand) > 1:
                raise self.fail(
                    o.because(
                        "Only one key allowed in match expression",
                        f'"{operator}" takes {{"equals-ignore-case": "..."}} alone',
                    )
                )
            folded.append(word)
            return
        raise self.fail(
            o.because(
                f"{operator} match pattern must be a string",
                f'got {o.show(operand)}; write {{"{operator}": "..."}} or '
                f'{{"{operator}": {{"equals-ignore-case": "..."}}}}, one per object',
            )
        )

    def op_prefix(self, operand: Any) -> None:
        self._affix("prefix", operand, self.prefixes, self.prefixes_ic)

    def op_suffix(self, operand: Any) -> None:
        self._affix("suffix", operand, self.suffixes, self.suffixes_ic)

    def op_equals_ignore_case(self, operand: Any) -> None:
        if not isinstance(operand, str):
            raise self.fail(
                o.because(
                    "equals-ignore-case match pattern must be a string",
                    f"got {o.show(operand)}; write one string per object",
                )
            )
        self.ignore_case.append(operand)

    def op_exists(self, operand: Any) -> None:
        if not isinstance(operand, bool):
            raise self.fail(
                o.because(
                    "exists match pattern must be either true or false.",
                    f"got {o.show(operand)}",
                )
            )
        if operand:
            self.exists_true = True
        else:
            self.exists_false = True

    def op_numeric(self, operand: Any) -> None:
        self.others.append(o.numeric(operand, self.fail))

    def op_cidr(self, operand: Any) -> None:
        self.others.append(o.cidr(operand, self.fail))

    def op_wildcard(self, operand: Any) -> None:
        if not isinstance(operand, str):
            raise self.fail(
                o.because(
                    "wildcard match pattern must be a string",
                    f"got {o.show(operand)}; write one string per object",
                )
            )
        parts = o.wildcard_parts(operand, self.fail)
        self.wildcards.append(parts)
        self.others.append(v.wildcard(parts))

    def op_anything_but(self, operand: Any) -> None:
        predicate, globs = o.anything_but(operand, self.fail)
        self.wildcards.extend(globs)
        self.others.append(predicate)

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
            wildcards=tuple(self.wildcards),
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
        raise _fail(
            path,
            o.because("Empty arrays are not allowed", "list at least one value or operator"),
        )
    leaf = _Leaf(keys, path)
    for item in items:
        leaf.add(item)
    return leaf.field()
