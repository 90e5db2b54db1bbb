"""Leasing on the SQLite bus: one lease call's SQL, and the fetches that wait for events.

Runs on the bus's writer thread (``fetch_once``) or is shared between it and the event
loop (``Parked``: created on the loop, registered and served on the writer thread,
woken on the loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Sequence

from triggerfish.bus._sqlite_schema import group_row
from triggerfish.bus.base import Delivery
from triggerfish.events.model import decode_event


def fetch_once(
    conn: sqlite3.Connection, now: float, topic: str, group: str, max_count: int, lease: float
) -> tuple[list[Delivery], float | None]:
    """Lease up to ``max_count`` events of ``group``: retries and expired leases first,
    then new events; with none, when the group's earliest pending event falls due."""
    group_id, cursor, topic_id = group_row(conn, topic, group)
    until = now + lease
    out: list[Delivery] = []
    # Retries and expired leases first, earliest due first (the index order).
    due = conn.execute(
        "SELECT seq, attempt FROM pending WHERE group_id = ? AND due <= ? ORDER BY due LIMIT ?",
        (group_id, now, max_count),
    ).fetchall()
    redelivered: list[tuple[float, int, int]] = []
    for seq, attempt in due:
        stored = conn.execute(
            "SELECT published_at, body FROM events WHERE topic_id = ? AND seq = ?",
            (topic_id, seq),
        ).fetchone()
        if stored is None:  # its event is gone with the topic's history
            conn.execute("DELETE FROM pending WHERE group_id = ? AND seq = ?", (group_id, seq))
            continue
        redelivered.append((until, group_id, seq))
        event = decode_event(stored[1])
        out.append(Delivery(topic, group, seq, event, attempt + 1, stored[0], until))
    if redelivered:
        conn.executemany(
            "UPDATE pending SET attempt = attempt + 1, due = ?, leased = 1"
            " WHERE group_id = ? AND seq = ?",
            redelivered,
        )
    room = max_count - len(out)
    if room > 0:
        fresh = conn.execute(
            "SELECT seq, published_at, body FROM events WHERE topic_id = ? AND seq > ?"
            " ORDER BY seq LIMIT ?",
            (topic_id, cursor, room),
        ).fetchall()
        if fresh:
            last = fresh[-1][0]
            # One statement for the whole range: every row stepped separately would
            # hand the GIL back and forth with the event loop once per event.
            conn.execute(
                "INSERT OR REPLACE INTO pending"
                " SELECT ?, seq, 1, ?, 1 FROM events WHERE topic_id = ? AND seq > ?"
                " AND seq <= ?",
                (group_id, until, topic_id, cursor, last),
            )
            conn.execute("UPDATE groups SET cursor = ? WHERE id = ?", (last, group_id))
            for seq, published_at, body in fresh:
                event = decode_event(body)
                out.append(Delivery(topic, group, seq, event, 1, published_at, until))
    if out:
        out.sort(key=lambda d: d.offset)
        return out, None
    next_due = conn.execute(
        "SELECT min(due) FROM pending WHERE group_id = ?", (group_id,)
    ).fetchone()[0]
    return out, next_due


def int_list(offsets: Sequence[int]) -> str:
    """Offsets as one JSON array, for ``json_each``: one statement settles them all."""
    return "[" + ",".join(str(int(offset)) for offset in offsets) + "]"


class Parked:
    """A fetch waiting on the writer thread for events of its topic."""

    __slots__ = ("future", "group", "lease", "loop", "max_count", "served")

    def __init__(self, group: str, max_count: int, lease: float) -> None:
        self.group = group
        self.max_count = max_count
        self.lease = lease
        self.loop = asyncio.get_running_loop()
        self.future: asyncio.Future[list[Delivery] | None] = self.loop.create_future()
        self.served: list[int] = []  # offsets leased to it (writer thread)

    def wake(self, value: list[Delivery] | None) -> None:
        def resolve() -> None:
            if not self.future.done():
                self.future.set_result(value)

        with contextlib.suppress(RuntimeError):  # its loop is closed: nobody waits
            self.loop.call_soon_threadsafe(resolve)


def ignore_outcome(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved: a failed give-back only delays a redelivery
