"""Finding the values at a field path of an event, and checking a field in one call.

A path is the tuple of keys from the root, as the pattern names them
(``{"detail": {"state": ...}}`` and ``{"detail.state": ...}`` are both
``("detail", "state")``). The values at a path are:

- the leaf reached by following the keys through nested objects;
- through arrays at any depth: every element is followed, and an array at the leaf
  gives each of its elements (nested arrays are flattened);
- an event key that itself contains dots stands for the nested keys it joins:
  when ``"state"`` is absent, ``{"state.status": "running"}`` is looked up as well
  (the nested form is used when both are present);
- objects are not values (they hold fields), and neither is an empty array.

The common case, nested objects all the way to one scalar, takes a fast path with
no allocation; everything else (arrays, missing keys, dotted keys) takes the general
walk.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from triggerfish.patterns._values import Predicate

Check = Callable[[Mapping[str, Any]], bool]
Getter = Callable[[Mapping[str, Any]], Sequence[Any]]

_MISSING: Any = object()
_NOTHING: tuple[Any, ...] = ()


class _Walk:
    """The general walk over one path: collects every value found there."""

    __slots__ = ("joined", "keys", "size")

    def __init__(self, keys: tuple[str, ...]) -> None:
        self.keys = keys
        self.size = len(keys)
        # joined[i]: (j, "k_i.k_i+1....k_j-1") for every j > i + 1, shortest first.
        self.joined = tuple(
            tuple((j, ".".join(keys[i:j])) for j in range(i + 2, len(keys) + 1))
            for i in range(len(keys))
        )

    def collect(self, node: Any, level: int, out: list[Any]) -> None:
        if isinstance(node, list | tuple):
            for element in node:
                self.collect(element, level, out)
            return
        if level == self.size:
            if not isinstance(node, Mapping):
                out.append(node)
            return
        if not isinstance(node, Mapping):
            return
        found = node.get(self.keys[level], _MISSING)
        if found is not _MISSING:
            self.collect(found, level + 1, out)
            return
        for next_level, dotted in self.joined[level]:
            found = node.get(dotted, _MISSING)
            if found is not _MISSING:
                self.collect(found, next_level, out)
                return

    def values(self, event: Mapping[str, Any]) -> list[Any]:
        out: list[Any] = []
        self.collect(event, 0, out)
        return out


def make_getter(keys: tuple[str, ...]) -> Getter:
    """A function giving the values at ``keys`` in an event (see the module doc)."""
    walk = _Walk(keys)
    slow = walk.values
    if len(keys) == 1:
        (k0,) = keys

        def get1(event: Mapping[str, Any]) -> Sequence[Any]:
            v = event.get(k0, _MISSING)
            cls = v.__class__
            if cls is list or cls is dict or cls is tuple:
                return slow(event)
            if v is _MISSING:
                return _NOTHING
            return (v,)

        return get1

    def get_n(event: Mapping[str, Any]) -> Sequence[Any]:
        v: Any = event
        for key in keys:
            if v.__class__ is not dict:
                return slow(event)
            v = v.get(key, _MISSING)
        cls = v.__class__
        if v is _MISSING or cls is list or cls is dict or cls is tuple:
            return slow(event)
        return (v,)

    return get_n


def make_check(keys: tuple[str, ...], scalar: Predicate, when_absent: bool) -> Check:
    """A function telling whether the field at ``keys`` matches.

    It matches when any value there satisfies ``scalar``, or, when there is no value
    at all, when ``when_absent`` (the pattern said ``{"exists": false}``).
    """
    walk = _Walk(keys)

    def slow(event: Mapping[str, Any]) -> bool:
        values = walk.values(event)
        if not values:
            return when_absent
        # A loop, not any()/all(): no generator is allocated per call.
        for value in values:  # noqa: SIM110
            if scalar(value):
                return True
        return False

    if len(keys) == 1:
        (k0,) = keys

        def check1(event: Mapping[str, Any]) -> bool:
            v = event.get(k0, _MISSING)
            cls = v.__class__
            if v is _MISSING or cls is list or cls is dict or cls is tuple:
                return slow(event)
            return scalar(v)

        return check1

    if len(keys) == 2:
        k0, k1 = keys

        def check2(event: Mapping[str, Any]) -> bool:
            v = event.get(k0, _MISSING)
            if v.__class__ is dict:
                v = v.get(k1, _MISSING)
                cls = v.__class__
                if not (v is _MISSING or cls is list or cls is dict or cls is tuple):
                    return scalar(v)
            return slow(event)

        return check2

    if len(keys) == 3:
        k0, k1, k2 = keys

        def check3(event: Mapping[str, Any]) -> bool:
            v = event.get(k0, _MISSING)
            if v.__class__ is dict:
                v = v.get(k1, _MISSING)
                if v.__class__ is dict:
                    v = v.get(k2, _MISSING)
                    cls = v.__class__
                    if not (v is _MISSING or cls is list or cls is dict or cls is tuple):
                        return scalar(v)
            return slow(event)

        return check3

    def check_n(event: Mapping[str, Any]) -> bool:
        v: Any = event
        for key in keys:
            if v.__class__ is not dict:
                return slow(event)
            v = v.get(key, _MISSING)
        cls = v.__class__
        if v is _MISSING or cls is list or cls is dict or cls is tuple:
            return slow(event)
        return scalar(v)

    return check_n
