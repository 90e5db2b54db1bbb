"""Leader lease, membership and change announcements between nodes sharing one store,
in process on an SQLite store (the store's own tests cover PostgreSQL's atomicity),
also while the store is away and once it is back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from triggerfish.cluster import ChangeWatcher, LeaderLease, Membership
from triggerfish.errors import AdapterError
from triggerfish.store import SqlStore
from triggerfish.store.cluster import Cluster
from triggerfish.store.documents import Transaction


async def until(condition: Callable[[], bool], *, within: float = 5.0) -> float:
    """Wait for ``condition``; returns the seconds it took."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > within:
            raise AssertionError(f"not within {within} s")
        await asyncio.sleep(0.01)
    return time.monotonic() - started


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    async with SqlStore(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}") as opened:
        yield opened


#: The leases' ttl, in seconds. A lease holder gives the store a third of it to answer
#: each renewal: 0.5 s, which a loaded machine's SQLite commit stays well within.
TTL = 1.5
#: A node's heartbeats, and the silence after which the others show it as gone, in
#: seconds: a node whose heartbeat a loaded machine delays is not taken for a dead one.
HEARTBEAT, GONE_AFTER = 0.1, 1.5


def lease(store: SqlStore, holder: str, log: list[tuple[str, bool]]) -> LeaderLease:
    async def changed(held: bool) -> None:
        log.append((holder, held))

    return LeaderLease(store.cluster, name="schedules", holder=holder, ttl=TTL, on_change=changed)


async def test_one_node_leads_and_another_takes_over_within_two_lease_periods(
    store: SqlStore,
) -> None:
    log: list[tuple[str, bool]] = []
    first, second = lease(store, "a", log), lease(store, "b", log)
    await first.start()
    await second.start()
    try:
        assert (first.held, second.held) == (True, False)
        # Stays: nothing happens to wait for; the lease outlives its ttl by renewals.
        await asyncio.sleep(TTL * 1.5)
        assert (first.held, second.held) == (True, False)
        # The leader dies without handing the lease back: it stops renewing.
        assert first._task is not None
        first._task.cancel()
        took = await until(lambda: second.held)
        assert took <= 2 * TTL + 0.1
        assert log == [("a", True), ("b", True)]
    finally:
        await second.stop()
    assert log[-1] == ("b", False)


async def test_a_leader_that_stops_hands_over_at_once(store: SqlStore) -> None:
    log: list[tuple[str, bool]] = []
    first, second = lease(store, "a", log), lease(store, "b", log)
    await first.start()
    await second.start()
    try:
        await first.stop()
        took = await until(lambda: second.held)
        assert took <= TTL  # at its next attempt, without waiting for an expiry
    finally:
        await second.stop()


async def test_a_change_on_one_node_reaches_the_others_not_itself(store: SqlStore) -> None:
    seen: dict[str, int] = {"a": 0, "b": 0}

    def watcher(name: str, cluster: Cluster) -> ChangeWatcher:
        async def changed() -> None:
            seen[name] += 1

        return ChangeWatcher(cluster, on_change=changed, interval=0.02)

    b_store = Outage(store)  # never away: it counts b's reads
    a, b = watcher("a", store.cluster), watcher("b", b_store.cluster)
    await a.start()
    await b.start()
    try:
        await a.announce()
        await until(lambda: seen["b"] == 1)
        await b.announce()
        await b.announce()
        await until(lambda: seen["a"] >= 1)
        tries = b_store.tries
        await until(lambda: b_store.tries >= tries + 2)  # b read the counter since
        assert seen["b"] == 1  # b applied its own changes already
    finally:
        await a.stop()
        await b.stop()


async def test_membership_lists_nodes_and_shows_a_silent_one_as_gone(store: SqlStore) -> None:
    def member(node_id: str, port: int) -> Membership:
        return Membership(
            store.cluster,
            node_id=node_id,
            address=f"http://127.0.0.1:{port}",
            version="0.1.0",
            report=lambda: {"warm": 2},
            interval=HEARTBEAT,
            gone_after=GONE_AFTER,
        )

    a, b = member("a", 8081), member("b", 8082)
    await a.start()
    await b.start()
    try:
        views = {v.id: v for v in await a.view()}
        assert {k: (v.state, v.this, v.info) for k, v in views.items()} == {
            "a": ("running", True, {"warm": 2}),
            "b": ("running", False, {"warm": 2}),
        }
        assert b._task is not None
        b._task.cancel()  # b dies: no more heartbeats
        deadline = time.monotonic() + 5 * GONE_AFTER
        while (states := {v.id: v.state for v in await a.view()})["b"] == "running":
            assert time.monotonic() < deadline, "b is not gone"
            await asyncio.sleep(0.02)
        assert states == {"a": "running", "b": "gone"}
        await a.drain()
        assert {v.id: v.state for v in await b.view()}["a"] == "draining"
    finally:
        await a.stop()
    assert {v.id: v.state for v in await b.view()}["a"] == "stopped"


class Outage:
    """The store's cluster tables behind a switch: while ``away``, every transaction
    fails as one on a database that cannot be reached does. ``tries`` counts the
    transactions asked for."""

    def __init__(self, store: SqlStore) -> None:
        self.away = False
        self.tries = 0
        read, write = store.transactions
        self.cluster = Cluster(self._reach(read), self._reach(write))

    def _reach(self, transaction: Transaction) -> Transaction:
        @asynccontextmanager
        async def opened() -> AsyncIterator[AsyncConnection]:
            self.tries += 1
            if self.away:
                raise AdapterError("cannot reach the store: connection refused")
            async with transaction() as conn:
                yield conn

        return opened


async def test_a_leader_that_loses_the_store_steps_down_and_leads_again_once_back(
    store: SqlStore,
) -> None:
    outage = Outage(store)
    running: list[bool] = []
    fail_next = [0]

    async def changed(held: bool) -> None:
        # Starting the schedules reads the store: it fails while the store is away.
        if fail_next[0]:
            fail_next[0] -= 1
            raise AdapterError("cannot reach the store")
        running.append(held)

    leader = LeaderLease(outage.cluster, name="l", holder="a", ttl=TTL, on_change=changed)
    await leader.start()
    try:
        assert running == [True]
        outage.away = True
        await until(lambda: not leader.held)
        assert running == [True, False]  # stepped down at once, without the store
        fail_next[0] = 2  # the first reactions to leading again fail: tried again
        outage.away = False
        await until(lambda: running == [True, False, True], within=10 * TTL)
        assert leader.held
    finally:
        await leader.stop()


class SlowLeases(Cluster):
    """The store's leases answering late: the n-th acquire is written at once and
    answered ``delays[n]`` seconds later (the lease runs from the moment it was asked
    for, as in a real store); None (and every acquire past the list) is a store that
    takes nothing and never answers. ``held_until``: the expiry of the last lease
    written."""

    def __init__(self, store: SqlStore, delays: list[float | None]) -> None:
        super().__init__(*store.transactions)
        self._delays = delays
        self.held_until: float | None = None

    async def acquire_lease(self, name: str, holder: str, ttl: float) -> bool:
        delay = self._delays.pop(0) if self._delays else None
        if delay is None:
            await asyncio.Event().wait()
        taken = await super().acquire_lease(name, holder, ttl)
        held = await self.lease_holder(name)
        if held is not None and held[0] == holder:
            self.held_until = held[1]
        await asyncio.sleep(delay or 0.0)
        return taken


async def test_a_leader_whose_store_stops_answering_steps_down_with_a_third_of_its_lease_left(
    store: SqlStore,
) -> None:
    ttl = 2 * TTL
    # Taken at once; renewed once, answered after most of the third of the ttl a
    # renewal may take; then the store answers no more.
    leases = SlowLeases(store, [0.0, 0.9 * ttl / 3])
    stepped_down: list[float] = []

    async def changed(held: bool) -> None:
        if not held:
            stepped_down.append(time.time())

    leader = LeaderLease(leases, name="l", holder="a", ttl=ttl, on_change=changed)
    await leader.start()
    try:
        await until(lambda: bool(stepped_down), within=2 * ttl)
        assert leases.held_until is not None
        # Given up with a third of the lease left, for what runs under it (schedules,
        # the sources one node runs) to stop before another node can take it; half of
        # that third is allowed for a loaded machine's late wake-ups.
        assert leases.held_until - stepped_down[0] >= ttl / 6
    finally:
        await leader.stop()


async def test_a_change_that_fails_to_apply_is_applied_again(store: SqlStore) -> None:
    outage = Outage(store)
    applied = []
    fail_next = [1]

    async def changed() -> None:
        if fail_next[0]:
            fail_next[0] -= 1
            raise AdapterError("cannot reach the store")  # halfway through the reload
        applied.append(await store.cluster.generation())

    watcher = ChangeWatcher(outage.cluster, on_change=changed, interval=0.02)
    await watcher.start()
    try:
        outage.away = True
        await store.cluster.bump_generation()  # another node's change, during the outage
        tries = outage.tries
        await until(lambda: outage.tries >= tries + 2)  # it tried to read the counter
        assert applied == []
        outage.away = False
        await until(lambda: applied == [1])
        tries = outage.tries
        await until(lambda: outage.tries >= tries + 2)  # it read the counter again
        assert applied == [1]  # once it held, not again
    finally:
        await watcher.stop()


async def test_heartbeats_resume_when_the_store_is_back(store: SqlStore) -> None:
    outage = Outage(store)
    member = Membership(
        outage.cluster,
        node_id="a",
        address="http://127.0.0.1:8081",
        version="0.1.0",
        report=dict,
        interval=0.05,
        gone_after=0.3,
    )
    # Another node, whose store is reachable, looks at it.
    other = Membership(store.cluster, node_id="b", address="", version="", report=dict,
                       gone_after=0.3)  # fmt: skip

    async def seen_as(state: str) -> None:
        started = time.monotonic()
        while [v.state for v in await other.view()] != [state]:
            assert time.monotonic() - started < 5.0, f"not {state} within 5 s"
            await asyncio.sleep(0.02)

    await member.start()
    try:
        outage.away = True
        await seen_as("gone")
        outage.away = False
        await seen_as("running")
    finally:
        await member.stop()
