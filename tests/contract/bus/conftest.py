"""Fixtures of the shared Bus contract suite: one parameter per implementation.

Add an implementation by appending a ``BusKind`` to ``KINDS``. Its capability flags say
which tests apply: a broker that cannot take an injected clock skips the tests that move
time by hand (those that can run on real time with short leases do so for every kind).
A kind that needs a server checks it in ``available``, which skips with the reason on a
developer's machine and fails under ``CI`` (``support.services.require_port``). A kind
whose storage outlives the test (a shared server) removes what the test created in
``cleanup``; it derives its names from the test's ``tmp_path``, so tests never collide.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from support.services import require_port
from triggerfish.bus.base import Bus
from triggerfish.bus.memory import MemoryBus
from triggerfish.bus.sqlite import SqliteBus

#: The dedupe window every bus of the suite is built with, in seconds.
DEDUPE_WINDOW = 3600.0
#: The dedupe window of ``forgetful_bus``, short enough to wait for, in seconds.
SHORT_DEDUPE_WINDOW = 0.5
#: The NATS server with JetStream the ``nats`` kind uses.
NATS_URL = os.environ.get("TRIGGERFISH_TEST_NATS", "nats://127.0.0.1:4222")


class ManualClock:
    """A clock that moves only when told; starts at the real time so stamps look real."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _anywhere() -> None:
    return None


@dataclass(frozen=True)
class BusKind:
    name: str
    make: Callable[[Path, Callable[[], float], float], Bus]  # (tmp_path, clock, dedupe_window)
    manual_clock: bool  # honours an injected clock
    durable: bool  # a new instance on the same storage sees what the last one stored
    available: Callable[[], None] = _anywhere  # skips (or fails in CI) without its server
    cleanup: Callable[[Path], Awaitable[None]] | None = None  # removes a test's leftovers


#: Mixed into every NATS prefix, so a run never meets the streams of an earlier one that
#: died before removing them (test directories are numbered again after a while).
_RUN = os.urandom(8)


def _nats_prefix(where: Path) -> str:
    """One stream prefix per test directory: a reopened bus finds the same streams."""
    digest = hashlib.blake2b(str(where).encode(), digest_size=6, key=_RUN).hexdigest()
    return f"tft-{digest}"


def _make_nats(where: Path, clock: Callable[[], float], window: float) -> Bus:
    from triggerfish.bus.nats import NatsBus

    # A short ack wait to start with: a lease of a bus that went away ends within a
    # second, where a real cluster would wait for the longest lease its groups use.
    return NatsBus(
        NATS_URL, dedupe_window=window, prefix=_nats_prefix(where), ack_wait=1.0, timeout=5.0
    )


def _nats_available() -> None:
    parts = urlsplit(NATS_URL)
    require_port(parts.hostname or "127.0.0.1", parts.port or 4222, "NATS with JetStream")


async def _nats_cleanup(where: Path) -> None:
    bus = _make_nats(where, time.time, DEDUPE_WINDOW)
    await bus.start()
    try:
        for topic in await bus.topics():
            await bus.delete_topic(topic.name)
    finally:
        await bus.stop()


NATS = BusKind(
    "nats",
    _make_nats,
    manual_clock=False,
    durable=True,
    available=_nats_available,
    cleanup=_nats_cleanup,
)

KINDS = [
    BusKind(
        "sqlite",
        lambda tmp, clock, window: SqliteBus(tmp / "bus.db", clock=clock, dedupe_window=window),
        manual_clock=True,
        durable=True,
    ),
    BusKind(
        "memory",
        lambda tmp, clock, window: MemoryBus(clock=clock, dedupe_window=window),
        manual_clock=True,
        durable=False,
    ),
    NATS,
]


@pytest.fixture(params=KINDS, ids=[k.name for k in KINDS])
def bus_kind(request: pytest.FixtureRequest) -> BusKind:
    kind: BusKind = request.param
    kind.available()
    return kind


@pytest.fixture
def dedupe_window() -> float:
    return DEDUPE_WINDOW


@pytest.fixture
def clock(bus_kind: BusKind) -> ManualClock:
    """A hand-moved clock; tests that take it skip on kinds that keep their own time."""
    if not bus_kind.manual_clock:
        pytest.skip(f"{bus_kind.name} keeps its own time")
    return ManualClock()


@pytest.fixture
async def bus(
    bus_kind: BusKind, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Bus]:
    """A started bus; on the manual clock when the test asked for ``clock``."""
    clock: Callable[[], float] = time.time
    if "clock" in request.fixturenames:
        clock = request.getfixturevalue("clock")
    async with _started(bus_kind, tmp_path, clock, DEDUPE_WINDOW) as instance:
        yield instance


@pytest.fixture
async def forgetful_bus(bus_kind: BusKind, tmp_path: Path) -> AsyncIterator[Bus]:
    """A started bus of its own that forgets published pairs after SHORT_DEDUPE_WINDOW."""
    where = tmp_path / "forgetful"
    where.mkdir()
    async with _started(bus_kind, where, time.time, SHORT_DEDUPE_WINDOW) as instance:
        yield instance


@pytest.fixture
def nats_url() -> str:
    return NATS_URL


@pytest.fixture
def open_nats(tmp_path: Path) -> Callable[[str], AbstractAsyncContextManager[Bus]]:
    """Start NATS buses for tests of what only that bus does: one prefix per ``label``,
    and everything under it removed at the end."""
    NATS.available()

    def open_one(label: str) -> AbstractAsyncContextManager[Bus]:
        where = tmp_path / label
        where.mkdir(exist_ok=True)
        return _started(NATS, where, time.time, DEDUPE_WINDOW)

    return open_one


@asynccontextmanager
async def _started(
    kind: BusKind, where: Path, clock: Callable[[], float], window: float
) -> AsyncIterator[Bus]:
    instance = kind.make(where, clock, window)
    await instance.start()
    try:
        yield instance
    finally:
        try:
            await instance.stop()
        finally:
            if kind.cleanup is not None:
                await kind.cleanup(where)


_names = itertools.count(1)


@pytest.fixture
def name() -> Callable[[str], str]:
    """Unique topic and group names, so kinds backed by a shared server never collide."""
    run = f"{time.monotonic_ns():x}"

    def make(prefix: str) -> str:
        return f"{prefix}-{run}-{next(_names)}"

    return make


@pytest.fixture
async def topic(bus: Bus, name: Callable[[str], str]) -> str:
    created = name("orders")
    await bus.create_topic(created)
    return created


@pytest.fixture
def reopen(bus_kind: BusKind, tmp_path: Path) -> Callable[[], AbstractAsyncContextManager[Bus]]:
    """Open another instance on the storage of ``bus``; skips kinds that keep nothing."""
    if not bus_kind.durable:
        pytest.skip(f"{bus_kind.name} keeps nothing across instances")

    @asynccontextmanager
    async def open_again() -> AsyncIterator[Bus]:
        instance = bus_kind.make(tmp_path, time.time, DEDUPE_WINDOW)
        await instance.start()
        try:
            yield instance
        finally:
            await instance.stop()

    return open_again
