"""Ids: time-sortable ids for invocations and events, and the tag of a node.

Ids are 26 characters, ULID layout, increasing within a process.

The first 10 characters are the milliseconds since the Unix epoch and the last 16 are
random, both in Crockford's base 32, so sorting ids as strings sorts them by creation
time. Within one process every id is greater than the one before, even within one
millisecond or when the clock steps back, so "newest first" can order by id alone.

The random part keeps ids of different processes (and nodes) apart; ids are not secrets
and promise nothing more, so it comes from a fast generator (``random.Random``) seeded
from ``os.urandom``, not from ``os.urandom`` itself. A child made by ``fork`` draws a
new seed, and its next id jumps ahead (by a random step below 2**64) of the ones its
parent can still make in the same millisecond, so parent and child do not make the same
ids.

A node's tag (``node_tag``) is a short digest of its data directory: the same across
restarts of the node, different for the nodes of a cluster even on one machine. It
names what a node keeps apart from the others (consumer names, client ids, the
sandbox's folders).
"""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time
import weakref
from pathlib import Path

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_DECODE = {char: index for index, char in enumerate(_ALPHABET)}
_RANDOM_BITS = 80
_LOW_BITS = 10  # the last two characters
_LOW_MAX = (1 << _LOW_BITS) - 1
_HIGH_MAX = (1 << (_RANDOM_BITS - _LOW_BITS)) - 1
ID_LENGTH = 26

# Two characters per lookup: ids are made on every invocation, and a loop of one
# character at a time cost more than the rest of ``new_id``.
_PAIRS = [first + second for first in _ALPHABET for second in _ALPHABET]


class IdGenerator:
    """Makes increasing ids; thread-safe.

    An id is the text of the current millisecond and the first 70 random bits (kept
    as ``_prefix``) and the last 10 bits (``_low``, two characters). Within one
    millisecond the 80 random bits count up by one, which mostly changes the last two
    characters only, so most ids cost a lookup and one concatenation."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._random = random.Random(os.urandom(32))
        self._last_ms = -1
        self._next_ms_ns = 0  # the first nanosecond after ``_last_ms``
        self._high = 0  # the random part is ``_high << 10 | _low``
        self._low = 0
        self._prefix = ""  # the id's first 24 characters
        self._time_head_of = -1  # ``_time_head`` is the text of this ``ms >> 10``
        self._time_head = ""
        if hasattr(os, "register_at_fork"):
            own = weakref.ref(self)

            def after_fork_in_child() -> None:
                generator = own()
                if generator is not None:
                    generator._after_fork()

            os.register_at_fork(after_in_child=after_fork_in_child)

    def __call__(self) -> str:
        lock = self._lock
        lock.acquire()
        try:
            now_ns = time.time_ns()
            if now_ns >= self._next_ms_ns:
                now_ms = now_ns // 1_000_000
                # The top bit stays clear so increments within a millisecond cannot overflow.
                self._restart(now_ms, self._random.getrandbits(_RANDOM_BITS - 1))
            elif self._low < _LOW_MAX:
                self._low += 1
            else:
                self._carry()
            return self._prefix + _PAIRS[self._low]
        finally:
            lock.release()

    def many(self, count: int) -> list[str]:
        """``count`` increasing ids, as ``count`` calls in a row would make them, for
        one reading of the clock and one turn of the lock."""
        made: list[str] = []
        if count <= 0:
            return made
        lock = self._lock
        lock.acquire()
        try:
            now_ns = time.time_ns()
            if now_ns >= self._next_ms_ns:
                self._restart(now_ns // 1_000_000, self._random.getrandbits(_RANDOM_BITS - 1))
                first = self._low
            elif self._low < _LOW_MAX:
                first = self._low + 1
            else:
                self._carry()
                first = self._low
            while True:
                # The ids that differ in their last two characters only, then a carry.
                last = min(first + count - len(made), _LOW_MAX + 1)
                prefix = self._prefix
                made += [prefix + pair for pair in _PAIRS[first:last]]
                self._low = last - 1
                if len(made) == count:
                    return made
                self._carry()
                first = self._low
        finally:
            lock.release()

    def _restart(self, ms: int, random_part: int) -> None:
        self._last_ms = ms
        self._next_ms_ns = (ms + 1) * 1_000_000
        self._high = high = random_part >> _LOW_BITS
        self._low = random_part & _LOW_MAX
        if ms >> 10 != self._time_head_of:
            # The first 8 characters of the time change once in 1024 milliseconds.
            self._time_head_of = ms >> 10
            self._time_head = _encode(ms >> 10, 8)
        self._prefix = self._time_head + _PAIRS[ms & 1023] + _text_of_70_bits(high)

    def _carry(self) -> None:
        """The last two characters wrap: the rest of the random part counts up, or the
        id moves to the next millisecond when all 80 bits are spent."""
        if self._high < _HIGH_MAX:
            self._high += 1
            self._low = 0
            self._prefix = self._prefix[:10] + _text_of_70_bits(self._high)
        else:
            self._restart(self._last_ms + 1, 0)

    def _after_fork(self) -> None:
        # The parent may have held the lock, and it goes on drawing the numbers the child
        # would draw: a new lock, a new seed, and a jump of up to 2**64 over the ids the
        # parent can still make in this millisecond.
        self._lock = threading.Lock()
        self._random.seed(os.urandom(32))
        self._time_head_of = -1  # made again, in case the fork came halfway through it
        if self._last_ms < 0:
            return
        jumped = (self._high << _LOW_BITS | self._low) + 1 + self._random.getrandbits(64)
        if jumped >> _RANDOM_BITS:
            self._restart(self._last_ms + 1, 0)
        else:
            self._restart(self._last_ms, jumped)


def _text_of_70_bits(value: int) -> str:
    pairs = _PAIRS
    return "".join(
        (
            pairs[value >> 60 & 1023],
            pairs[value >> 50 & 1023],
            pairs[value >> 40 & 1023],
            pairs[value >> 30 & 1023],
            pairs[value >> 20 & 1023],
            pairs[value >> 10 & 1023],
            pairs[value & 1023],
        )
    )


def _encode(value: int, length: int) -> str:
    """The low ``length * 5`` bits of ``value`` in ``length`` characters."""
    value &= (1 << (length * 5)) - 1
    top = (length + 1) // 2 * 10 - 10
    text = "".join([_PAIRS[value >> shift & 1023] for shift in range(top, -1, -10)])
    return text[-length:] if length % 2 else text


def id_time(value: str) -> float:
    """The Unix time (seconds) at which the id ``value`` was made."""
    if len(value) != ID_LENGTH:
        raise ValueError(f"not an id: {value!r}")
    ms = 0
    for char in value[:10].upper():
        ms = ms * 32 + _DECODE[char]
    return ms / 1000.0


def id_floor(timestamp: float) -> str:
    """The smallest id that could be made at ``timestamp`` (for range queries on ids)."""
    return _encode(max(0, int(timestamp * 1000)), 10) + "0" * 16


def node_tag(data_dir: Path) -> str:
    """The tag of the node whose data directory is ``data_dir``: 8 hex characters."""
    return hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:8]


# Ids of one process must increase together, so the process shares one generator. It
# holds no resource and needs no lifecycle; it is the one module-level state here.
new_id = IdGenerator()
