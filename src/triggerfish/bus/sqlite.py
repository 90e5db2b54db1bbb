"""SqliteBus: the embedded, durable Bus of a single Triggerfish node, in one SQLite file.

Promises:

- ``publish`` returns only after the events are committed. The database runs in WAL mode
  with ``synchronous=NORMAL`` by default: a commit is in the WAL file before ``publish``
  returns, so everything committed survives a crash or ``kill -9`` of the Triggerfish
  process; only a power loss or kernel crash can lose the last commits. Pass
  ``synchronous="FULL"`` to fsync every commit and survive power loss too.
- Every write (publish, fetch, ack, nack, ...) runs on ONE writer connection that
  merges the calls queued while it was busy into one transaction (group commit): many
  concurrent callers share one commit. Its thread runs them while it has work; while
  it is idle, the event loop runs the small ones of each of its passes itself, which
  saves two thread switches per call (see ``_sqlite_thread.py``). Pure reads
  (``read``, ``topics``, ``groups``) use a second connection on a reader thread and
  never wait behind the writer. WAL checkpoints run on a third connection and thread
  (``_sqlite_checkpoint.py``), so no commit waits for one; the WAL stays bounded all
  the same.
- A lease held by a process that died simply runs out: the event becomes due again and
  the next ``fetch`` delivers it with ``attempt`` increased.
- Publish times never go backwards within a topic, so offset order and time order agree.

A ``fetch`` that finds nothing parks with the writer: the next publish (or
``nack``, ``seek``) of its topic leases the new events for it inside the publish's own
transaction and hands them over when that commits, with no second trip through the
writer. It also wakes when the earliest retry or lease of its group that it knew of
falls due, or when ``wait`` runs out.

One ``SqliteBus`` per file and process: fetches wait on in-process signals, so a
publish from another process is seen at the latest when the waiting fetch times out.
After ``stop()`` every call raises ``AdapterError``, including fetches still waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from triggerfish.bus._common import (
    check_fetch_arguments,
    check_retention,
    check_topic_name,
)
from triggerfish.bus._sqlite_checkpoint import Checkpointer
from triggerfish.bus._sqlite_dedupe import remember, seen_since
from triggerfish.bus._sqlite_leases import Parked, fetch_once, ignore_outcome, int_list
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
from triggerfish.errors import AdapterError, ValidationError
from triggerfish.events.model import Event, decode_event, encode_event
from triggerfish.sqlite_files import keeping_wal_index

Synchronous = Literal["NORMAL", "FULL"]

#: Publishes of up to this many events may run on the event loop (about a millisecond).
INLINE_EVENTS = 32


class SqliteBus:
    """A durable ``Bus`` in the SQLite file at ``path``; ``dedupe_window`` is in seconds."""

    def __init__(
        self,
        path: Path,
        *,
        dedupe_window: float = 86400.0,
        clock: Callable[[], float] = time.time,
        synchronous: Synchronous = "NORMAL",
        vacuum: bool = True,
    ) -> None:
        self._path = Path(path)
        self._vacuum = vacuum
        self._dedupe_window = dedupe_window
        self._clock = clock
        self._synchronous = synchronous
        # Fetches waiting for events, by topic; touched only by jobs, which run one at a
        # time (on the writer thread, or inline on the event loop).
        self._parked: dict[str, list[Parked]] = {}
        self._checkpointer = Checkpointer(self._path, name="triggerfish-bus-checkpoint")
        self._writer = SqliteThread(
            self._path,
            name="triggerfish-bus-writer",
            write=True,
            setup=self._setup_writer,
            on_commit=self._checkpointer.committed,
            # A commit that waits for the disk (FULL) must not hold up the event loop.
            inline=synchronous == "NORMAL",
        )
        self._reader = SqliteThread(
            self._path, name="triggerfish-bus-reader", write=False, setup=self._setup_reader
        )

    @property
    def commits(self) -> int:
        """Write transactions committed so far (fewer than calls when group commit merges)."""
        return self._writer.commits

    @property
    def checkpoints(self) -> int:
        """WAL checkpoints run so far (see ``_sqlite_checkpoint``)."""
        return self._checkpointer.passes

    async def start(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        await self._writer.start()
        await self._reader.start()
        self._checkpointer.start()

    async def stop(self) -> None:
        # The -shm file stays: a start on a disk that filled up meanwhile opens the bus.
        with keeping_wal_index(self._path):
            await self._reader.stop()
            await asyncio.to_thread(self._checkpointer.stop)
            await self._writer.stop()
        # The writer is gone: wake the fetches still parked; they find it stopped.
        parked, self._parked = self._parked, {}
        for waiting in parked.values():
            for park in waiting:
                park.wake(None)

    async def __aenter__(self) -> SqliteBus:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _setup_writer(self, conn: sqlite3.Connection) -> None:
        conn.execute("PRAGMA busy_timeout = 10000")
        # Takes effect in a new file only: retention's free pages can be given back.
        # Asked of a new file only, too: on an existing one it writes, and a start on a
        # full disk must write nothing it need not (see below). ``vacuum`` False: the
        # pointer-map upkeep it costs every commit is not paid, and free pages are reused.
        if self._vacuum and conn.execute("PRAGMA page_count").fetchone()[0] == 0:
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        # Checkpoints run beside the writer, never inside one of its commits.
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise ValidationError(
                f"{self._path} was written by a newer Triggerfish (bus schema {version}); "
                "upgrade Triggerfish to open it"
            )
        if version != SCHEMA_VERSION:
            # Only when it changes: a start writes nothing it need not, so a node starts
            # on a full disk (and then says why it takes no events).
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
            self._serve(conn, name, fetch=False)

        await self._writer.run(job, heavy=True)

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
            pairs = [(event.source, event.id) for event in events]
            # Pairs seen before, then those of this batch as it goes (a pair twice in one
            # batch is stored once).
            earlier = seen_since(conn, topic_id, pairs, horizon) if dedupe else {}
            seen: dict[tuple[str, str], int] = {}
            rows: list[tuple[int, int, float, bytes]] = []
            results: list[PublishResult] = []
            for key, body in zip(pairs, bodies, strict=True):
                original = (earlier.get(key) or seen.get(key)) if dedupe else None
                if original is not None:
                    results.append(PublishResult(key[1], key[0], original, True))
                    continue
                last_seq += 1
                seen[key] = last_seq
                rows.append((topic_id, last_seq, published_at, body))
                results.append(PublishResult(key[1], key[0], last_seq, False))
            if rows:
                conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?)", rows)
                remember(conn, topic_id, seen, published_at)
                conn.execute(
                    "UPDATE topics SET last_seq = ?, last_published = ? WHERE id = ?",
                    (last_seq, published_at, topic_id),
                )
                self._serve(conn, topic)
            return results

        # Many events take milliseconds to store: not on the event loop.
        return await self._writer.run(job, heavy=len(events) > INLINE_EVENTS)

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
                self._serve(conn, topic, fetch=False)

        await self._writer.run(job, heavy=True)

    async def groups(self, topic: str | None = None) -> list[GroupInfo]:
        def job(conn: sqlite3.Connection) -> list[GroupInfo]:
            where: str = ""
            params: tuple[int, ...] = ()
            if topic is not None:
                where = "WHERE g.topic_id = ?"
                params = (topic_row(conn, topic)[0],)
            rows = conn.execute(
                "SELECT t.name, g.name, g.cursor,"
                # Offsets after the cursor have no gaps (retention removes the oldest
                # first), so the backlog is a subtraction from the first of them: one
                # index seek, where counting them stepped through every waiting event.
                " coalesce(t.last_seq + 1 - (SELECT min(e.seq) FROM events e"
                "  WHERE e.topic_id = g.topic_id AND e.seq > g.cursor), 0),"
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
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            remaining = deadline - loop.time()
            park = Parked(group, max_count, lease) if remaining > 0 else None

            def job(
                conn: sqlite3.Connection, park: Parked | None = park
            ) -> tuple[list[Delivery], float | None]:
                found, next_due = fetch_once(conn, self._clock(), topic, group, max_count, lease)
                if not found and park is not None:
                    self._parked.setdefault(topic, []).append(park)
                return found, next_due

            try:
                found, next_due = await self._writer.run(job)
                if found or park is None:
                    return found
                timeout = remaining
                if next_due is not None:
                    # No longer than until the earliest retry or expired lease is due; a
                    # small floor keeps a clock that does not advance from spinning.
                    timeout = min(timeout, max(next_due - self._clock(), 0.001))
                try:
                    served = await asyncio.wait_for(asyncio.shield(park.future), timeout)
                except TimeoutError:
                    served = await self._unpark(topic, park)
            except asyncio.CancelledError:
                if park is not None:
                    self._give_back(topic, park)
                raise
            if served:
                return served
            # Woken without events (a release, a replay, a due time): look again.

    def _serve(self, conn: sqlite3.Connection, topic: str, *, fetch: bool = True) -> None:
        """On the writer thread, in the job that changed ``topic``: lease what each
        parked fetch of it can take now, handed over when the job commits."""
        parked = self._parked.pop(topic, None)
        for park in parked or ():
            found: list[Delivery] = []
            if fetch:
                conn.execute("SAVEPOINT serve")
                try:
                    found, _ = fetch_once(
                        conn, self._clock(), topic, park.group, park.max_count, park.lease
                    )
                except Exception:
                    # Its own fetch will meet the problem again, and report it.
                    conn.execute("ROLLBACK TO serve")
                    found = []
                conn.execute("RELEASE serve")
            park.served = [delivery.offset for delivery in found]
            self._writer.after_commit(park.loop, park.future, found or None)

    async def _unpark(self, topic: str, park: Parked) -> list[Delivery]:
        """The wait ran out: leave the parking, or take what was served meanwhile."""

        def job(conn: sqlite3.Connection) -> bool:
            waiting = self._parked.get(topic, [])
            if park in waiting:
                waiting.remove(park)
                return True
            return False

        if await self._writer.run(job):
            return []
        # Served in an earlier job: its outcome was handed back before this one's.
        return await park.future or []

    def _give_back(self, topic: str, park: Parked) -> None:
        """The fetch was cancelled: leave the parking, and release what was served to
        it meanwhile so that other fetches take it at once."""

        def job(conn: sqlite3.Connection) -> None:
            waiting = self._parked.get(topic, [])
            if park in waiting:
                waiting.remove(park)
            elif park.served:
                group_id = group_row(conn, topic, park.group)[0]
                conn.execute(
                    "UPDATE pending SET due = ?, leased = 0 WHERE group_id = ? AND leased = 1"
                    " AND seq IN (SELECT value FROM json_each(?))",
                    (self._clock(), group_id, int_list(park.served)),
                )
                self._serve(conn, topic)

        with contextlib.suppress(AdapterError):
            self._writer.run(job).add_done_callback(ignore_outcome)

    async def ack(self, topic: str, group: str, offsets: Sequence[int]) -> None:
        # One offset (an ack on a quiet bus) by the primary key: cheaper than json_each.
        one = int(offsets[0]) if len(offsets) == 1 else None
        listed = int_list(offsets)

        def job(conn: sqlite3.Connection) -> None:
            group_id = group_row(conn, topic, group)[0]
            if one is not None:
                conn.execute("DELETE FROM pending WHERE group_id = ? AND seq = ?", (group_id, one))
                return
            conn.execute(
                "DELETE FROM pending WHERE group_id = ? AND seq IN"
                " (SELECT value FROM json_each(?))",
                (group_id, listed),
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
            self._serve(conn, topic)

        await self._writer.run(job)

    async def extend(self, topic: str, group: str, offsets: Sequence[int], lease: float) -> None:
        check_fetch_arguments(1, lease, 0.0)

        listed = int_list(offsets)

        def job(conn: sqlite3.Connection) -> None:
            group_id = group_row(conn, topic, group)[0]
            until = self._clock() + lease
            conn.execute(
                "UPDATE pending SET due = ? WHERE group_id = ? AND leased = 1"
                " AND seq IN (SELECT value FROM json_each(?))",
                (until, group_id, listed),
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
            self._serve(conn, topic)
            return count

        return await self._writer.run(job, heavy=True)

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

        return await self._writer.run(job, heavy=True)
