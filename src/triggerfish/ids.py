"""Time-sortable ids for invocations and events: 26 characters, ULID layout,
increasing within a process.

The first 10 characters are the milliseconds since the Unix epoch and the last 16 are
random, both in Crockford's base 32, so sorting ids as strings sorts them by creation
time. Within one process every id is greater than the one before, even within one
millisecond or when the clock steps back, so "newest first" can order by id alone.
"""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_DECODE = {char: index for index, char in enumerate(_ALPHABET)}
_RANDOM_BITS = 80
_RANDOM_MAX = (1 << _RANDOM_BITS) - 1
ID_LENGTH = 26


class IdGenerator:
    """Makes increasing ids; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = -1
        self._last_random = 0

    def __call__(self) -> str:
        with self._lock:
            now_ms = time.time_ns() // 1_000_000
            if now_ms > self._last_ms:
                self._last_ms = now_ms
                # The top bit stays clear so increments within a millisecond cannot overflow.
                self._last_random = int.from_bytes(os.urandom(10), "big") >> 1
            elif self._last_random < _RANDOM_MAX:
                self._last_random += 1
            else:
                self._last_ms += 1
                self._last_random = 0
            return _encode(self._last_ms, 10) + _encode(self._last_random, 16)


# Two characters per lookup: ids are made on every invocation, and a loop of one
# character at a time cost more than the rest of ``new_id``.
_PAIRS = [first + second for first in _ALPHABET for second in _ALPHABET]


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


# Ids of one process must increase together, so the process shares one generator. It
# holds no resource and needs no lifecycle; it is the one module-level state here.
new_id = IdGenerator()
