"""SqliteBus specifics: group commit, failure isolation inside a batch, file handling."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from contextlib import closing
from pathlib import Path

import pytest

from support.waiting import until
from triggerfish.bus import _sqlite_checkpoint
from triggerfish.bus._sqlite_thread import INLINE_WINDOW, SqliteThread
from triggerfish.bus.base import Delivery
from triggerfish.bus.sqlite import SqliteBus
from triggerfish.errors import AdapterError, NotFoundError, ValidationError
from triggerfish.events.model import Event


def event(n: int) -> Event:
    return Event(id=f"evt-{n}", source="/shop", type="order.created")


async def waiting_fetch(bus: SqliteBus, wait: float = 5) -> asyncio.Task[list[Delivery]]:
    """A fetch by group ``billing`` of a new, empty topic ``orders``, left waiting."""
    await bus.create_topic("orders")
    await bus.subscribe("orders", "billing")
    before = bus.commits
    waiting = asyncio.create_task(bus.fetch("orders", "billing", max_count=10, lease=30, wait=wait))
    # Its first look found nothing and parked it, in a transaction of its own.
    await until(lambda: bus.commits > before, what="the fetch looked once")
    return waiting


async def table_writer(
    tmp_path: Path, column: str = "INTEGER", *, inline: bool = False
) -> SqliteThread:
    """A started writer of ``tmp_path/t.db``, with a table ``t`` of one ``column`` ``n``."""

    def setup(conn: sqlite3.Connection) -> None:
        conn.execute(f"CREATE TABLE IF NOT EXISTS t (n {column})")

    writer = SqliteThread(
        tmp_path / "t.db", name="test-writer", write=True, setup=setup, inline=inline
    )
    await writer.start()
    return writer


async def test_concurrent_publishers_share_commits(tmp_path: Path) -> None:
    async with SqliteBus(tmp_path / "bus.db") as bus:
        await bus.create_topic("orders")
        before = bus.commits

        results = await asyncio.gather(*(bus.publish("orders", [event(n)]) for n in range(50)))

        assert sorted(r.offset for [r] in results) == list(range(1, 51))
        assert bus.commits - before < 25
        assert (await bus.topic("orders")).count == 50


async def test_a_failing_call_in_a_shared_commit_fails_alone(tmp_path: Path) -> None:
    async with SqliteBus(tmp_path / "bus.db") as bus:
        await bus.create_topic("orders")

        outcomes = await asyncio.gather(
            bus.publish("orders", [event(1)]),
            bus.publish("missing", [event(2)]),
            bus.publish("orders", [event(3)]),
            return_exceptions=True,
        )

        assert isinstance(outcomes[1], NotFoundError)
        assert [s.event.id for s in await bus.read("orders")] == ["evt-1", "evt-3"]


async def test_a_failing_call_alone_in_its_commit_leaves_nothing_behind(tmp_path: Path) -> None:
    writer = await table_writer(tmp_path)
    try:

        def half_done(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO t VALUES (1)")
            raise ValidationError("changed its mind")

        with pytest.raises(ValidationError, match="changed its mind"):
            await writer.run(half_done)
        await writer.run(lambda conn: conn.execute("INSERT INTO t VALUES (2)"))
        rows = await writer.run(lambda conn: conn.execute("SELECT n FROM t").fetchall())
        assert rows == [(2,)]
    finally:
        await writer.stop()


async def test_full_synchronous_mode_stores_events(tmp_path: Path) -> None:
    async with SqliteBus(tmp_path / "bus.db", synchronous="FULL") as bus:
        await bus.create_topic("orders")
        await bus.publish("orders", [event(1)])
    with closing(sqlite3.connect(tmp_path / "bus.db")) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 1


async def test_creates_missing_parent_folders(tmp_path: Path) -> None:
    path = tmp_path / "data" / "nested" / "bus.db"
    async with SqliteBus(path) as bus:
        await bus.create_topic("orders")
    assert path.exists()


async def test_a_file_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bus.db"
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA user_version = 99")
    bus = SqliteBus(path)
    with pytest.raises(ValidationError, match="newer Triggerfish"):
        await bus.start()
    await bus.stop()


async def test_a_file_that_is_not_a_database_is_an_adapter_error(tmp_path: Path) -> None:
    path = tmp_path / "bus.db"
    path.write_bytes(b"this is not a database" * 100)
    bus = SqliteBus(path)
    with pytest.raises(AdapterError, match=str(path)):
        await bus.start()
    await bus.stop()


async def test_calls_before_start_or_after_stop_say_so(tmp_path: Path) -> None:
    bus = SqliteBus(tmp_path / "bus.db")
    with pytest.raises(AdapterError, match="start"):
        await bus.topics()
    await bus.start()
    await bus.create_topic("orders")
    await bus.stop()
    with pytest.raises(AdapterError, match="not running"):
        await bus.publish("orders", [event(1)])


async def test_a_waiting_fetch_is_served_by_the_publish_that_commits_its_events(
    tmp_path: Path,
) -> None:
    async with SqliteBus(tmp_path / "bus.db") as bus:
        waiting = await waiting_fetch(bus)
        before = bus.commits

        await bus.publish("orders", [event(1), event(2)])
        deliveries = await asyncio.wait_for(waiting, 1)

        assert [d.event.id for d in deliveries] == ["evt-1", "evt-2"]
        assert bus.commits - before == 1  # leased in the publish's own transaction
        [group] = await bus.groups("orders")
        assert (group.backlog, group.in_flight) == (0, 2)


async def test_a_cancelled_waiting_fetch_leaves_no_event_behind(tmp_path: Path) -> None:
    async with SqliteBus(tmp_path / "bus.db") as bus:
        waiting = await waiting_fetch(bus)
        waiting.cancel()
        await bus.publish("orders", [event(1)])

        deliveries = await bus.fetch("orders", "billing", max_count=10, lease=30, wait=1)

        assert [d.event.id for d in deliveries] == ["evt-1"]


async def test_stop_ends_a_waiting_fetch_with_an_adapter_error(tmp_path: Path) -> None:
    bus = SqliteBus(tmp_path / "bus.db")
    await bus.start()
    waiting = await waiting_fetch(bus, wait=30)
    await bus.stop()
    with pytest.raises(AdapterError):
        await asyncio.wait_for(waiting, 2)


async def test_the_wal_stays_bounded_while_publishers_never_pause(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small bounds, so that a few megabytes show what gigabytes would.
    monkeypatch.setattr(_sqlite_checkpoint, "CHECKPOINT_EVERY", 10)
    monkeypatch.setattr(_sqlite_checkpoint, "WAL_LIMIT", 100)
    path = tmp_path / "bus.db"
    body = b'"' + b"x" * 2000 + b'"'  # a JSON string

    async def publisher(n: int) -> None:
        for k in range(150):
            batch = [
                Event(id=f"p{n}-{k}-{i}", source="/load", type="t", data=body) for i in range(5)
            ]
            await bus.publish("orders", batch)

    async with SqliteBus(path) as bus:
        await bus.create_topic("orders")
        # About 45 MB of WAL frames: a WAL that never started again would hold them all.
        await asyncio.gather(*(publisher(n) for n in range(8)))
        assert bus.checkpoints > 0
        wal_bytes = (tmp_path / "bus.db-wal").stat().st_size
        assert (await bus.topic("orders")).count == 8 * 150 * 5
    assert wal_bytes < 12 * 1024 * 1024


async def test_a_job_of_the_loop_waits_behind_the_jobs_the_thread_has(tmp_path: Path) -> None:
    writer = await table_writer(tmp_path, "TEXT", inline=True)
    release = threading.Event()
    running = threading.Event()

    def slow(conn: sqlite3.Connection) -> None:
        running.set()
        release.wait(5)
        conn.execute("INSERT INTO t VALUES ('from another loop')")

    async def other_loop() -> None:
        await writer.run(slow)  # not the loop that started it: goes to the thread

    other = threading.Thread(target=asyncio.run, args=(other_loop(),))
    try:
        other.start()
        await asyncio.to_thread(running.wait, 5)
        first = writer.run(lambda conn: conn.execute("INSERT INTO t VALUES ('first')"))
        second = writer.run(lambda conn: conn.execute("INSERT INTO t VALUES ('second')"))
        # Stays: nothing happens to wait for; the job must not finish meanwhile.
        await asyncio.sleep(0.05)
        assert not first.done()  # it waits for the thread's job, which still runs
        release.set()
        await asyncio.gather(first, second)
        rows = await writer.run(lambda conn: conn.execute("SELECT n FROM t").fetchall())
        assert rows == [("from another loop",), ("first",), ("second",)]
    finally:
        release.set()
        await asyncio.to_thread(other.join, 5)
        await writer.stop()


async def test_a_quiet_bus_commits_on_the_loop_a_busy_one_beside_it(tmp_path: Path) -> None:
    writer = await table_writer(tmp_path, inline=True)
    home = threading.current_thread().name

    def job(conn: sqlite3.Connection) -> str:
        conn.execute("INSERT INTO t VALUES (1)")
        time.sleep(0.002)  # a commit that takes a while
        return threading.current_thread().name

    try:
        # Quiet: one job now and then runs on the loop, without a thread switch. The
        # jobs are further apart than the window the loop's share is counted over, so
        # each is the first of its window however long a loaded machine makes it.
        for _ in range(3):
            assert await writer.run(job) == home
            await asyncio.sleep(INLINE_WINDOW * 1.5)  # stays: spaces jobs out, as on a quiet bus
        # Busy: jobs back to back would take the whole loop; past its share of the
        # loop's time they run on the writer's thread.
        ran = [await writer.run(job) for _ in range(200)]
        assert home in ran
        assert "test-writer" in ran
        assert ran.count(home) < len(ran) / 2
    finally:
        await writer.stop()


async def test_jobs_queued_just_before_stop_still_commit(tmp_path: Path) -> None:
    writer = await table_writer(tmp_path, inline=True)
    queued = writer.run(lambda conn: conn.execute("INSERT INTO t VALUES (1)").rowcount)
    await writer.stop()
    assert queued.result() == 1
    with closing(sqlite3.connect(tmp_path / "t.db")) as conn:
        assert conn.execute("SELECT n FROM t").fetchall() == [(1,)]


async def test_the_backlog_counts_what_retention_left(tmp_path: Path) -> None:
    now = [1_000_000.0]
    async with SqliteBus(tmp_path / "bus.db", clock=lambda: now[0]) as bus:
        await bus.create_topic("orders", retention=60)
        await bus.subscribe("orders", "billing", start="earliest")
        await bus.publish("orders", [event(n) for n in range(3)])
        now[0] += 100
        await bus.publish("orders", [event(n) for n in range(3, 5)])

        assert await bus.trim() == 3
        [group] = await bus.groups("orders")
        assert group.backlog == 2

        [delivery] = await bus.fetch("orders", "billing", max_count=1, lease=30)
        assert delivery.event.id == "evt-3"
        [group] = await bus.groups("orders")
        assert (group.backlog, group.in_flight) == (1, 1)
