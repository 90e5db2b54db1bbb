"""The SQLite bus's memory of published ``(source, id)`` pairs, one statement a batch.

A publish of N events looks up the pairs it carries with one query over a JSON array
(``json_each`` as the outer loop, which ``CROSS JOIN`` makes SQLite keep, probing the
``dedupe`` primary key once per pair) and remembers the new
ones with one insert, instead of a statement per event: on the writer thread every
statement holds the interpreter lock for its binding and stepping, which the event loop
then waits for. A publish of one event, the most common on a quiet bus, uses the plain
statements on the primary key instead: for a single pair the JSON array costs more
than the statement it saves.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import msgspec

_encode = msgspec.json.Encoder().encode

_LOOKUP = (
    "SELECT d.source, d.id, d.seq FROM json_each(?) AS j CROSS JOIN dedupe AS d"
    " ON d.topic_id = ? AND d.source = j.value ->> 0 AND d.id = j.value ->> 1"
    " WHERE d.published_at > ?"
)
_LOOKUP_ONE = (
    "SELECT seq FROM dedupe WHERE topic_id = ? AND source = ? AND id = ? AND published_at > ?"
)
_REMEMBER = (
    "INSERT OR REPLACE INTO dedupe (topic_id, source, id, seq, published_at)"
    " SELECT ?, j.value ->> 0, j.value ->> 1, j.value ->> 2, ? FROM json_each(?) AS j"
)
_REMEMBER_ONE = (
    "INSERT OR REPLACE INTO dedupe (topic_id, source, id, seq, published_at) VALUES (?, ?, ?, ?, ?)"
)


def seen_since(
    conn: sqlite3.Connection, topic_id: int, pairs: Sequence[tuple[str, str]], horizon: float
) -> dict[tuple[str, str], int]:
    """The sequence number of each of ``pairs`` published on the topic after ``horizon``."""
    if len(pairs) == 1:
        [(source, id_)] = pairs
        row = conn.execute(_LOOKUP_ONE, (topic_id, source, id_, horizon)).fetchone()
        return {} if row is None else {(source, id_): row[0]}
    rows = conn.execute(_LOOKUP, (_encode(pairs), topic_id, horizon))
    return {(source, id_): seq for source, id_, seq in rows}


def remember(
    conn: sqlite3.Connection,
    topic_id: int,
    published: dict[tuple[str, str], int],
    published_at: float,
) -> None:
    """Remember each pair of ``published`` (pair -> sequence number) as seen now."""
    if len(published) == 1:
        [((source, id_), seq)] = published.items()
        conn.execute(_REMEMBER_ONE, (topic_id, source, id_, seq, published_at))
        return
    triples = [(source, id_, seq) for (source, id_), seq in published.items()]
    conn.execute(_REMEMBER, (topic_id, published_at, _encode(triples)))
