"""How complex the wildcards of one field are, measured the way EventBridge measures it.

EventBridge refuses a rule whose wildcards could keep too many partial matches alive
at once ("Rule is too complex"). Its measure, from the open-source matcher it runs, is:
for the worst possible value of the field, the number of *wildcard prefixes* the value
matches, summed over the distinct wildcard patterns of the field. A prefix is the
pattern cut after any of its characters (``a*b`` has ``a``, ``a*`` and ``a*b``); a
value matches a prefix when the prefix, read as a wildcard, matches the whole value.
So ``*:*:*:*:*:event-bus/*`` scores 11 (``":::::event-bus/:"`` matches the five
prefixes ending in ``*`` before ``event-bus``, the five ending in ``:``, and the whole
pattern), while ``*.png`` scores 2.

The worst value is found by running every pattern's automaton over all values at once
(a subset construction over the bytes the patterns use, plus one byte they don't),
which touches each reachable set of live prefixes once. Matching in Triggerfish never
backtracks, so the limit protects nothing at match time; it is applied so that a
pattern Triggerfish accepts is one EventBridge accepts too.
"""

from __future__ import annotations

from collections.abc import Iterable

#: The highest score a field's wildcards may reach.
MAX_WILDCARD_COMPLEXITY = 10

# Beyond this many distinct sets of live prefixes the field is refused as too complex
# without looking further; real patterns stay far below it.
_MAX_STATES = 20_000

_STAR = -1

_State = frozenset[tuple[int, int]]


def wildcard_complexity(globs: Iterable[tuple[str, ...]], limit: int) -> int:
    """The score of these wildcards (each as its pieces between ``*``), or ``limit + 1``.

    Stops as soon as the score passes ``limit``: the caller needs to know only that.
    """
    patterns: list[list[int]] = []
    for parts in dict.fromkeys(globs):
        tokens: list[int] = []
        for index, part in enumerate(parts):
            if index:
                tokens.append(_STAR)
            tokens.extend(part.encode())
        patterns.append(tokens)
    if not patterns:
        return 0
    alphabet = {t for tokens in patterns for t in tokens if t != _STAR}
    alphabet.add(next(b for b in range(256) if b not in alphabet))

    def close(states: set[tuple[int, int]]) -> _State:
        # A star can match nothing: reaching the place before a star reaches the star too.
        for which, at in list(states):
            tokens = patterns[which]
            while at < len(tokens) and tokens[at] == _STAR:
                at += 1
                states.add((which, at))
        return frozenset(states)

    start = close({(which, 0) for which in range(len(patterns))})
    seen = {start}
    todo = [start]
    worst = 0
    while todo:
        current = todo.pop()
        for byte in alphabet:
            following: set[tuple[int, int]] = set()
            for which, at in current:
                tokens = patterns[which]
                if at and tokens[at - 1] == _STAR:
                    following.add((which, at))
                if at < len(tokens) and tokens[at] == byte:
                    following.add((which, at + 1))
            if not following:
                continue
            state = close(following)
            # The empty prefix is where every value starts; it is not a partial match.
            worst = max(worst, sum(1 for _, at in state if at))
            if worst > limit or len(seen) > _MAX_STATES:
                return limit + 1
            if state not in seen:
                seen.add(state)
                todo.append(state)
    return worst
