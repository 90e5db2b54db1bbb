"""SqliteBus specifics: group commit, failure isolation inside a batch, file handling."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from triggerfish.bus.sqlite import SqliteBus
from triggerfish.errors import AdapterError, NotFoundError, ValidationError
from triggerfish.events.model import Event


def event(n: int) -> Event:
    return Event(id=f"evt-{n}", source="/shop", type="order.created")


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
