"""Event bus throughput: SqliteBus next to MemoryBus, plain SQLite and Redis Streams.

Run from the repository root: ``python -m bench.bus_bench`` (``--quick`` for a short run).
Each figure is the best of three rounds (``--rounds``), as the machine may be shared.

Prints, for each bus, in events per second:
- publish in batches of 100 events, one publisher;
- publish one event per call from 50 concurrent publishers (group commit at work), with
  the number of calls that shared one commit;
- the consumer cycle: fetch up to 100, ack them, until the backlog is drained, with one
  consumer and with four.

Peers measured in the same run: MemoryBus (the ceiling of the bus logic without storage),
plain ``sqlite3`` committing once per event (what the same file costs without group
commit), and Redis Streams (XADD, XREADGROUP, XACK) on a ``redis-server`` started here on
the loopback interface with an append-only file, when ``redis-server`` is installed.
SQLite runs with ``synchronous=NORMAL`` (safe against a process crash) and, for the
concurrent case, ``FULL`` as well (an fsync per commit, safe against power loss).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from triggerfish.bus.base import Bus
from triggerfish.bus.memory import MemoryBus
from triggerfish.bus.sqlite import SqliteBus
from triggerfish.events.model import Event, encode_event

BATCH = 100


def make_events(count: int, prefix: str) -> list[Event]:
    return [
        Event(
            id=f"{prefix}-{n}",
            source="bench/orders",
            type="com.shop.order.created",
            datacontenttype="application/json",
            data=b'{"orderId": "%d", "total": 250.5, "currency": "EUR"}' % n,
            extensions={"partitionkey": f"c-{n % 17}"},
        )
        for n in range(count)
    ]


async def timed(work: Callable[[], Awaitable[int]]) -> float:
    started = time.perf_counter()
    done = await work()
    return done / (time.perf_counter() - started)


# -- Triggerfish buses ----------------------------------------------------------------


async def publish_batches(bus: Bus, count: int) -> float:
    await bus.create_topic("batches")
    events = make_events(count, "b")

    async def work() -> int:
        for start in range(0, count, BATCH):
            await bus.publish("batches", events[start : start + BATCH])
        return count

    return await timed(work)


async def publish_concurrent(bus: Bus, count: int, publishers: int = 50) -> float:
    await bus.create_topic("singles")
    events = make_events(count, "s")
    share = count // publishers

    async def publisher(mine: list[Event]) -> None:
        for event in mine:
            await bus.publish("singles", [event])

    async def work() -> int:
        chunks = [events[i * share : (i + 1) * share] for i in range(publishers)]
        await asyncio.gather(*(publisher(chunk) for chunk in chunks))
        return share * publishers

    return await timed(work)


async def fetch_ack(bus: Bus, count: int, consumers: int) -> float:
    topic = f"drain-{consumers}"
    await bus.create_topic(topic)
    await bus.subscribe(topic, "g", start="earliest")
    events = make_events(count, topic)
    for start in range(0, count, 1000):
        await bus.publish(topic, events[start : start + 1000])

    async def consumer() -> int:
        done = 0
        while True:
            got = await bus.fetch(topic, "g", max_count=BATCH, lease=60)
            if not got:
                return done
            await bus.ack(topic, "g", [d.offset for d in got])
            done += len(got)

    async def work() -> int:
        return sum(await asyncio.gather(*(consumer() for _ in range(consumers))))

    return await timed(work)


async def measure_bus(make: Callable[[], Bus], count: int) -> dict[str, float]:
    bus = make()
    await bus.start()
    try:
        out = {"publish x100": await publish_batches(bus, count)}
        before = getattr(bus, "commits", 0)
        singles = count // 4
        out["publish x1, 50 tasks"] = await publish_concurrent(bus, singles)
        if isinstance(bus, SqliteBus):
            out["calls per commit"] = singles / max(bus.commits - before, 1)
        out["fetch+ack, 1 consumer"] = await fetch_ack(bus, count, 1)
        out["fetch+ack, 4 consumers"] = await fetch_ack(bus, count, 4)
        return out
    finally:
        await bus.stop()


# -- plain sqlite3, one commit per event ----------------------------------------------


def plain_sqlite(path: Path, count: int, synchronous: str) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, body BLOB)")
    bodies = [encode_event(e) for e in make_events(count, "p")]
    started = time.perf_counter()
    for body in bodies:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO events (body) VALUES (?)", (body,))
        conn.execute("COMMIT")
    rate = count / (time.perf_counter() - started)
    conn.close()
    return rate


# -- Redis Streams --------------------------------------------------------------------


@contextlib.asynccontextmanager
async def redis_server(folder: Path) -> AsyncIterator[Any]:
    import redis.asyncio as aioredis

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = await asyncio.create_subprocess_exec(
        *("redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", ""),
        *("--appendonly", "yes", "--appendfsync", "everysec", "--dir", str(folder)),
        stdout=subprocess.DEVNULL,
    )
    client = aioredis.Redis(host="127.0.0.1", port=port)
    try:
        for _ in range(100):
            with contextlib.suppress(Exception):
                await client.ping()
                break
            await asyncio.sleep(0.05)
        yield client
    finally:
        await client.aclose()
        server.terminate()
        await asyncio.wait_for(server.wait(), 10)


async def measure_redis(folder: Path, count: int) -> dict[str, float]:
    async with redis_server(folder) as client:
        bodies = [encode_event(e) for e in make_events(count, "r")]

        async def batches() -> int:
            for start in range(0, count, BATCH):
                pipe = client.pipeline(transaction=False)
                for body in bodies[start : start + BATCH]:
                    pipe.xadd("batches", {"e": body})
                await pipe.execute()
            return count

        singles = count // 4
        share = singles // 50

        async def publisher(mine: list[bytes]) -> None:
            for body in mine:
                await client.xadd("singles", {"e": body})

        async def concurrent() -> int:
            await asyncio.gather(
                *(publisher(bodies[i * share : (i + 1) * share]) for i in range(50))
            )
            return share * 50

        async def drain(stream: str, consumers: int) -> float:
            for start in range(0, count, 1000):
                pipe = client.pipeline(transaction=False)
                for body in bodies[start : start + 1000]:
                    pipe.xadd(stream, {"e": body})
                await pipe.execute()
            await client.xgroup_create(stream, "g", id="0")

            async def consumer(name: str) -> int:
                done = 0
                while True:
                    got = await client.xreadgroup("g", name, {stream: ">"}, count=BATCH)
                    if not got or not got[0][1]:
                        return done
                    ids = [entry_id for entry_id, _ in got[0][1]]
                    await client.xack(stream, "g", *ids)
                    done += len(ids)

            async def work() -> int:
                found = await asyncio.gather(*(consumer(f"c{i}") for i in range(consumers)))
                return sum(found)

            return await timed(work)

        return {
            "publish x100": await timed(batches),
            "publish x1, 50 tasks": await timed(concurrent),
            "fetch+ack, 1 consumer": await drain("drain-1", 1),
            "fetch+ack, 4 consumers": await drain("drain-4", 4),
        }


# -- report ---------------------------------------------------------------------------


async def one_round(folder: Path, count: int) -> dict[str, dict[str, float]]:
    columns: dict[str, dict[str, float]] = {
        "SqliteBus": await measure_bus(lambda: SqliteBus(folder / "normal.db"), count),
        "SqliteBus FULL": await measure_bus(
            lambda: SqliteBus(folder / "full.db", synchronous="FULL"), count
        ),
        "MemoryBus": await measure_bus(MemoryBus, count),
    }
    plain = min(count // 4, 5000)
    columns["sqlite3 commit/event"] = {
        "publish x1, 50 tasks": plain_sqlite(folder / "plain.db", plain, "NORMAL")
    }
    columns["sqlite3 FULL commit/event"] = {
        "publish x1, 50 tasks": plain_sqlite(folder / "plainfull.db", plain // 5, "FULL")
    }
    if shutil.which("redis-server"):
        columns["Redis Streams"] = await measure_redis(folder, count)
    return columns


async def run(count: int, rounds: int) -> None:
    """Print the best figure of ``rounds`` rounds, each on fresh files and a fresh server."""
    columns: dict[str, dict[str, float]] = {}
    for _ in range(rounds):
        with tempfile.TemporaryDirectory(prefix="triggerfish-bench-") as tmp:
            for column, figures in (await one_round(Path(tmp), count)).items():
                best = columns.setdefault(column, {})
                for row, value in figures.items():
                    best[row] = max(best.get(row, 0.0), value)
    rows = [
        "publish x100",
        "publish x1, 50 tasks",
        "calls per commit",
        "fetch+ack, 1 consumer",
        "fetch+ack, 4 consumers",
    ]
    width = max(len(c) for c in columns) + 2
    print(f"events/s, best of {rounds}".ljust(26) + "".join(c.rjust(width) for c in columns))
    for row in rows:
        cells = [columns[c].get(row) for c in columns]
        text = ["-" if v is None else f"{v:,.0f}" for v in cells]
        print(row.ljust(26) + "".join(t.rjust(width) for t in text))
    if not shutil.which("redis-server"):
        print("Redis Streams: not measured, redis-server is not installed")
    print("sqlite3 commit/event: one thread inserting and committing each event alone")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="2,000 events, one round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the best counts")
    args = parser.parse_args()
    if args.quick:
        asyncio.run(run(2_000, 1))
    else:
        asyncio.run(run(20_000, args.rounds))


if __name__ == "__main__":
    main()
