"""The SQLite bus's memory of published ``(source, id)`` pairs, one statement a batch.

A publish of N events looks up the pairs it carries with one query over a JSON array
(``json_each`` as the outer loop, which ``CROSS JOIN`` makes SQLite keep, probing the
``dedupe`` primary key once per pair) and remembers the new
ones with one insert, instead of a statement per event: on the writer thread every
statement holds the interpreter lock for its binding and stepping, which the event loop
then waits for.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

import msgspec

_encode = msgspec.json.Encoder().encode

_LOOKUP = (
    "SELECT d.source, d.id, d.seq FROM json_each(?) AS j CROSS JOIN dedupe AS d"
    " ON d.topic_id = ? AND d.source = j.value ->> 0 AND d.id = j.value ->> 1"
    " WHERE d.published_at > ?"
)
_REMEMBER = (
    "INSERT OR REPLACE INTO dedupe (topic_id, source, id, seq, published_at)"
    " SELECT ?, j.value ->> 0, j.value ->> 1, j.value ->> 2, ? FROM json_each(?) AS j"
)


def seen_since(
    conn: sqlite3.Connection, topic_id: int, pairs: Iterable[tuple[str, str]], horizon: float
) -> dict[tuple[str, str], int]:
    """The sequence number of each of ``pairs`` published on the topic after ``horizon``."""
    rows = conn.execute(_LOOKUP, (_encode(list(pairs)), topic_id, horizon))
    return {(source, id_): seq for source, id_, seq in rows}


def remember(
    conn: sqlite3.Connection,
    topic_id: int,
    published: dict[tuple[str, str], int],
    published_at: float,
) -> None:
    """Remember each pair of ``published`` (pair -> sequence number) as seen now."""
    triples = [(source, id_, seq) for (source, id_), seq in published.items()]
    conn.execute(_REMEMBER, (topic_id, published_at, _encode(triples)))
