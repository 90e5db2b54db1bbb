"""SqliteBus: the embedded, durable Bus of a single Triggerfish node, in one SQLite file.

Promises:

- ``publish`` returns only after the events are committed. The database runs in WAL mode
  with ``synchronous=NORMAL`` by default: a commit is in the WAL file before ``publish``
  returns, so everything committed survives a crash or ``kill -9`` of the Triggerfish
  process; only a power loss or kernel crash can lose the last commits. Pass
  ``synchronous="FULL"`` to fsync every commit and survive power loss too.
- Every write (publish, fetch, ack, nack, ...) runs on ONE writer thread that merges the
  calls queued while it was busy into one transaction (group commit): many concurrent
  callers share one commit. Pure reads (``read``, ``topics``, ``groups``) use a second
  connection on a reader thread and never wait behind the writer.
- A lease held by a process that died simply runs out: the event becomes due again and
  the next ``fetch`` delivers it with ``attempt`` increased.
- Publish times never go backwards within a topic, so offset order and time order agree.

A waiting ``fetch`` wakes when its topic gets a publish, a ``nack`` or a ``seek``, and
when the earliest retry or lease of its group that it knew of falls due.

One ``SqliteBus`` per file and process: fetches wait on in-process signals, so a
publish from another process is seen at the latest when the waiting fetch times out.
After ``stop()`` every call raises ``AdapterError``, including fetches still waiting.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from triggerfish.bus._common import (
    TopicSignals,
    check_fetch_arguments,
    check_retention,
    check_topic_name,
    wait_for_deliveries,
)
from triggerfish.bus._sqlite_schema import SCHEMA, SCHEMA_VERSION, first_since, group_row, topic_row
from triggerfish.bus._sqlite_thread import SqliteThread
from triggerfish.bus.base import (
    Delivery,
    GroupInfo,
    PublishResult,
    StartPosition,
    StoredEvent,
    TopicInfo,
)
from triggerfish.errors import ValidationError
from triggerfish.events.model import Event, decode_event, encode_event

Synchronous = Literal["NORMAL", "FULL"]


class SqliteBus:
    """A durable ``Bus`` in the SQLite file at ``path``; ``dedupe_window`` is in seconds."""

    def __init__(
        self,
        path: Path,
        *,
        dedupe_window: float = 86400.0,
        clock: Callable[[], float] = time.time,
        synchronous: Synchronous = "NORMAL",
    ) -> None:
        self._path = Path(path)
        self._dedupe_window = dedupe_window
        self._clock = clock
        self._synchronous = synchronous
        self._signals = TopicSignals()
        self._writer = SqliteThread(
            self._path, name="triggerfish-bus-writer", write=True, setup=self._setup_writer
        )
        self._reader = SqliteThread(
            self._path, name="triggerfish-bus-reader", write=False, setup=self._setup_reader
        )

    @property
    def commits(self) -> int:
        """Write transactions committed so far (fewer than calls when group commit merges)."""
        return self._writer.commits

    async def start(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        await self._writer.start()
        await self._reader.start()

    async def stop(self) -> None:
        self._signals.notify_all()
        await self._reader.stop()
        await self._writer.stop()

    async def __aenter__(self) -> SqliteBus:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _setup_writer(self, conn: sqlite3.Connection) -> None:
        conn.execute("PRAGMA busy_timeout = 10000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise ValidationError(
                f"{self._path} was written by a newer Triggerfish (bus schema {version}); "
                "upgrade Triggerfish to open it"
            )
        conn.executescript(SCHEMA)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @staticmethod
    def _setup_reader(conn: sqlite3.Connection) -> None:
        conn.execute("PRAGMA busy_timeout = 10000")
        conn.execute("PRAGMA query_only = 1")

    # -- topics --------------------------------------------------------------------------

    async def create_topic(self, name: str, *, retention: float | None = None) -> None:
        check_topic_name(name)
        check_retention(retention)

        def job(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO topics (name, retention) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET retention = excluded.retention",
                (name, retention),
            )

        await self._writer.run(job)

    async def delete_topic(self, name: str) -> None:
        def job(conn: sqlite3.Connection) -> None:
            topic_id = topic_row(conn, name)[0]
            conn.execute(
                "DELETE FROM pending WHERE group_id IN (SELECT id FROM groups WHERE topic_id = ?)",
                (topic_id,),
            )
            for table in ("groups", "events", "dedupe"):
                conn.execute(f"DELETE FROM {table} WHERE topic_id = ?", (topic_id,))
            conn.execute("DELETE FROM topics WHERE id = ?", (topic_id,))

        await self._writer.run(job)
        self._signals.notify(name)

    async def topics(self) -> list[TopicInfo]:
        def job(conn: sqlite3.Connection) -> list[TopicInfo]:
            names = conn.execute("SELECT name FROM topics ORDER BY name").fetchall()
            return [self._info(conn, name) for (name,) in names]

        return await self._reader.run(job)

    async def topic(self, name: str) -> TopicInfo:
        return await self._reader.run(lambda conn: self._info(conn, name))

    @staticmethod
    def _info(conn: sqlite3.Connection, name: str) -> TopicInfo:
        topic_id = topic_row(conn, name)[0]
        retention = conn.execute("SELECT retention FROM topics WHERE id = ?", (topic_id,))
        first, last, count = conn.execute(
            "SELECT min(seq), max(seq), count(*) FROM events WHERE topic_id = ?", (topic_id,)
        ).fetchone()
        return TopicInfo(name, retention.fetchone()[0], first, last, count)

    # -- publishing ----------------------------------------------------------------------

    async def publish(
        self, topic: str, events: Sequence[Event], *, dedupe: bool = True
    ) -> list[PublishResult]:
        """``dedupe=False`` stores every event even when its pair was seen (dead letters,
        redrives); the pair is still remembered for later publishes."""
        bodies = [encode_event(event) for event in events]
        window = self._dedupe_window

        def job(conn: sqlite3.Connection) -> list[PublishResult]:
            topic_id, last_seq, last_published = topic_row(conn, topic)
            now = self._clock()
            published_at = max(now, last_published)
            horizon = now - window
            seen: dict[tuple[str, str], int] = {}
            rows: list[tuple[int, int, float, bytes]] = []
            results: list[PublishResult] = []
            for event, body in zip(events, bodies, strict=True):
                key = (event.source, event.id)
                original = seen.get(key) if dedupe else None
                if original is None and dedupe:
                    found = conn.execute(
                        "SELECT seq FROM dedupe WHERE topic_id = ? AND source = ? AND id = ?"
                        " AND published_at > ?",
                        (topic_id, event.source, event.id, horizon),
                    ).fetchone()
                    original = None if found is None else found[0]
                if original is not None:
                    results.append(PublishResult(event.id, event.source, original, True))
                    continue
                last_seq += 1
                seen[key] = last_seq
                rows.append((topic_id, last_seq, published_at, body))
                results.append(PublishResult(event.id, event.source, last_seq, False))
            if rows:
                conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?)", rows)
                conn.executemany(
                    "INSERT OR REPLACE INTO dedupe VALUES (?, ?, ?, ?, ?)",
                    [
                        (topic_id, source, id_, seq, published_at)
                        for (source, id_), seq in seen.items()
                    ],
                )
                conn.execute(
                    "UPDATE topics SET last_seq = ?, last_published = ? WHERE id = ?",
                    (last_seq, published_at, topic_id),
                )
            return results

        results = await self._writer.run(job)
        if any(not r.duplicate for r in results):
            self._signals.notify(topic)
        return results

    async def read(
        self, topic: str, *, after: int = 0, since: float | None = None, limit: int = 100
    ) -> list[StoredEvent]:
        def job(conn: sqlite3.Connection) -> list[StoredEvent]:
            topic_id, last_seq, _ = topic_row(conn, topic)
            start = after
            if since is not None:
                start = max(after, first_since(conn, topic_id, since, last_seq) - 1)
            rows = conn.execute(
                "SELECT seq, published_at, body FROM events WHERE topic_id = ? AND seq > ?"
                " ORDER BY seq LIMIT ?",
                (topic_id, start, limit),
            ).fetchall()
            return [StoredEvent(topic, seq, decode_event(body), ts) for seq, ts, body in rows]

        return await self._reader.run(job)

    # -- consumer groups -----------------------------------------------------------------

    async def subscribe(self, topic: str, group: str, *, start: StartPosition = "latest") -> None:
        def job(conn: sqlite3.Connection) -> None:
            topic_id, last_seq, _ = topic_row(conn, topic)
            conn.execute(
                "INSERT INTO groups (topic_id, name, cursor) VALUES (?, ?, ?)"
                " ON CONFLICT (topic_id, name) DO NOTHING",
                (topic_id, group, last_seq if start == "latest" else 0),
            )

        await self._writer.run(job)

    async def unsubscribe(self, topic: str, group: str) -> None:
        def job(conn: sqlite3.Connection) -> None:
            topic_id = topic_row(conn, topic)[0]
            row = conn.execute(
                "SELECT id FROM groups WHERE topic_id = ? AND name = ?", (topic_id, group)
            ).fetchone()
            if row is not None:
                conn.execute("DELETE FROM pending WHERE group_id = ?", row)
                conn.execute("DELETE FROM groups WHERE id = ?", row)

        await self._writer.run(job)

    async def groups(self, topic: str | None = None) -> list[GroupInfo]:
        def job(conn: sqlite3.Connection) -> list[GroupInfo]:
            where: str = ""
            params: tuple[int, ...] = ()
            if topic is not None:
                where = "WHERE g.topic_id = ?"
                params = (topic_row(conn, topic)[0],)
            rows = conn.execute(
                "SELECT t.name, g.name, g.cursor,"
                " (SELECT count(*) FROM events e"
                "  WHERE e.topic_id = g.topic_id AND e.seq > g.cursor),"
                " (SELECT count(*) FROM pending p WHERE p.group_id = g.id AND p.leased = 1),"
                " (SELECT count(*) FROM pending p WHERE p.group_id = g.id AND p.leased = 0)"
                f" FROM groups g JOIN topics t ON t.id = g.topic_id {where}"
                " ORDER BY t.name, g.name",
                params,
            ).fetchall()
            return [GroupInfo(*row) for row in rows]

        return await self._reader.run(job)

    async def fetch(
        self, topic: str, group: str, *, max_count: int, lease: float, wait: float = 0.0
    ) -> list[Delivery]:
        check_fetch_arguments(max_count, lease, wait)

        def job(conn: sqlite3.Connection) -> tuple[list[Delivery], float | None]:
            return self._fetch_once(conn, topic, group, max_count, lease)

        async def once() -> tuple[list[Delivery], float | None]:
            return await self._writer.run(job)

        return await wait_for_deliveries(self._signals, topic, once, wait=wait, clock=self._clock)

    def _fetch_once(
        self, conn: sqlite3.Connection, topic: str, group: str, max_count: int, lease: float
    ) -> tuple[list[Delivery], float | None]:
        group_id, cursor, topic_id = group_row(conn, topic, group)
        now = self._clock()
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
                conn.executemany(
                    "INSERT OR REPLACE INTO pending VALUES (?, ?, 1, ?, 1)",
                    [(group_id, seq, until) for seq, _, _ in fresh],
                )
                conn.execute("UPDATE groups SET cursor = ? WHERE id = ?", (fresh[-1][0], group_id))
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

    async def ack(self, topic: str, group: str, offsets: Sequence[int]) -> None:
        def job(conn: sqlite3.Connection) -> None:
            group_id = group_row(conn, topic, group)[0]
            conn.executemany(
                "DELETE FROM pending WHERE group_id = ? AND seq = ?",
                [(group_id, seq) for seq in offsets],
            )

        await self._writer.run(job)

    async def nack(self, topic: str, group: str, offset: int, *, delay: float) -> None:
        if not delay >= 0:
            raise ValidationError(f"delay must be zero or more seconds, not {delay}", field="delay")

        def job(conn: sqlite3.Connection) -> None:
            group_id = group_row(conn, topic, group)[0]
            conn.execute(
                "UPDATE pending SET due = ?, leased = 0 WHERE group_id = ? AND seq = ?",
                (self._clock() + delay, group_id, offset),
            )

        await self._writer.run(job)
        self._signals.notify(topic)

    async def extend(self, topic: str, group: str, offsets: Sequence[int], lease: float) -> None:
        check_fetch_arguments(1, lease, 0.0)

        def job(conn: sqlite3.Connection) -> None:
            group_id = group_row(conn, topic, group)[0]
            until = self._clock() + lease
            conn.executemany(
                "UPDATE pending SET due = ? WHERE group_id = ? AND seq = ? AND leased = 1",
                [(until, group_id, seq) for seq in offsets],
            )

        await self._writer.run(job)

    async def seek(
        self, topic: str, group: str, *, offset: int | None = None, since: float | None = None
    ) -> int:
        if (offset is None) == (since is None):
            raise ValidationError("seek needs exactly one of offset or since", field="offset")

        def job(conn: sqlite3.Connection) -> int:
            group_id, _, topic_id = group_row(conn, topic, group)
            first = offset
            if first is None:
                assert since is not None  # checked above
                last_seq = topic_row(conn, topic)[1]
                first = first_since(conn, topic_id, since, last_seq)
            conn.execute("UPDATE groups SET cursor = ? WHERE id = ?", (max(first - 1, 0), group_id))
            conn.execute("DELETE FROM pending WHERE group_id = ? AND seq >= ?", (group_id, first))
            count: int = conn.execute(
                "SELECT count(*) FROM events WHERE topic_id = ? AND seq >= ?", (topic_id, first)
            ).fetchone()[0]
            return count

        requeued = await self._writer.run(job)
        self._signals.notify(topic)
        return requeued

    # -- retention -----------------------------------------------------------------------

    async def trim(self) -> int:
        def job(conn: sqlite3.Connection) -> int:
            now = self._clock()
            conn.execute("DELETE FROM dedupe WHERE published_at <= ?", (now - self._dedupe_window,))
            removed = 0
            topics = conn.execute(
                "SELECT id, retention FROM topics WHERE retention IS NOT NULL"
            ).fetchall()
            for topic_id, retention in topics:
                removed += conn.execute(
                    "DELETE FROM events WHERE topic_id = ? AND published_at < ? AND seq NOT IN"
                    " (SELECT p.seq FROM pending p JOIN groups g ON g.id = p.group_id"
                    "  WHERE g.topic_id = ?)",
                    (topic_id, now - retention, topic_id),
                ).rowcount
            return removed

        return await self._writer.run(job)
