"""The SQLite bus schema and the lookups every SqliteBus job starts with.

``seq`` is an event's offset within its topic (OFFSET is an SQL keyword). Publish times
never go backwards within a topic, so the time index also orders events by offset.
"""

from __future__ import annotations

import sqlite3

from triggerfish.bus._common import unknown_group, unknown_topic

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS topics (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    retention REAL,
    last_seq INTEGER NOT NULL DEFAULT 0,
    last_published REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS events (
    topic_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    published_at REAL NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (topic_id, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_by_time ON events (topic_id, published_at);
CREATE TABLE IF NOT EXISTS dedupe (
    topic_id INTEGER NOT NULL,
    source TEXT NOT NULL,
    id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    published_at REAL NOT NULL,
    PRIMARY KEY (topic_id, source, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS dedupe_by_time ON dedupe (published_at);
CREATE TABLE IF NOT EXISTS groups (
    id INTEGER PRIMARY KEY,
    topic_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    cursor INTEGER NOT NULL,
    UNIQUE (topic_id, name)
);
-- One row per event handed to a group and not yet acknowledged. ``due`` is the lease
-- end while ``leased`` is 1, the retry time once released with ``nack``.
CREATE TABLE IF NOT EXISTS pending (
    group_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    due REAL NOT NULL,
    leased INTEGER NOT NULL,
    PRIMARY KEY (group_id, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS pending_by_due ON pending (group_id, due);
"""


def topic_row(conn: sqlite3.Connection, name: str) -> tuple[int, int, float]:
    row = conn.execute(
        "SELECT id, last_seq, last_published FROM topics WHERE name = ?", (name,)
    ).fetchone()
    if row is None:
        raise unknown_topic(name)
    return row  # type: ignore[no-any-return]


def group_row(conn: sqlite3.Connection, topic: str, group: str) -> tuple[int, int, int]:
    """``(group_id, cursor, topic_id)``; NotFoundError naming the topic or the group."""
    row = conn.execute(
        "SELECT g.id, g.cursor, t.id FROM groups g JOIN topics t ON t.id = g.topic_id"
        " WHERE t.name = ? AND g.name = ?",
        (topic, group),
    ).fetchone()
    if row is None:
        topic_row(conn, topic)
        raise unknown_group(topic, group)
    return row  # type: ignore[no-any-return]


def first_since(conn: sqlite3.Connection, topic_id: int, since: float, last_seq: int) -> int:
    """The first offset published at or after ``since`` (past the end when none is).

    Publish times grow with offsets within a topic, so the time index finds it directly.
    """
    row = conn.execute(
        "SELECT seq FROM events WHERE topic_id = ? AND published_at >= ?"
        " ORDER BY published_at, seq LIMIT 1",
        (topic_id, since),
    ).fetchone()
    return last_seq + 1 if row is None else int(row[0])
