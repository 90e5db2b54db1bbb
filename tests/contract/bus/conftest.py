"""Fixtures of the shared Bus contract suite: one parameter per implementation.

Add an implementation by appending a ``BusKind`` to ``KINDS``. Its capability flags say
which tests apply: a broker that cannot take an injected clock skips the tests that move
time by hand (those that can run on real time with short leases do so for every kind).
A kind that needs a server returns ``None`` from ``available`` to skip with a reason on a
developer's machine; under ``CI`` it must fail instead.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from triggerfish.bus.base import Bus
from triggerfish.bus.memory import MemoryBus
from triggerfish.bus.sqlite import SqliteBus

#: The dedupe window every bus of the suite is built with, in seconds.
DEDUPE_WINDOW = 3600.0


class ManualClock:
    """A clock that moves only when told; starts at the real time so stamps look real."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass(frozen=True)
class BusKind:
    name: str
    make: Callable[[Path, Callable[[], float], float], Bus]  # (tmp_path, clock, dedupe_window)
    manual_clock: bool  # honours an injected clock
    durable: bool  # a new instance on the same storage sees what the last one stored


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
]


@pytest.fixture(params=KINDS, ids=[k.name for k in KINDS])
def bus_kind(request: pytest.FixtureRequest) -> BusKind:
    kind: BusKind = request.param
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
    instance = bus_kind.make(tmp_path, clock, DEDUPE_WINDOW)
    await instance.start()
    try:
        yield instance
    finally:
        await instance.stop()


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
