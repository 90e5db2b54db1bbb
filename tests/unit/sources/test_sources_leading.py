"""On a cluster, triggers that one node must run alone (schedules, broker subscriptions
that would hand every node each message) run on the leading node only, and move with
the lead (also when the lead is lost with the store); the others run on every node."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from triggerfish.bus.memory import MemoryBus
from triggerfish.errors import AdapterError
from triggerfish.sources.base import SourceContext
from triggerfish.sources.brokers import broker_kinds
from triggerfish.sources.manager import SourceManager
from triggerfish.store.records import TriggerRecord
from triggerfish.store.sql import SqlStore


class MemorySource:
    def __init__(self, running: set[str], trigger: str) -> None:
        self._running = running
        self._trigger = trigger

    async def start(self) -> None:
        self._running.add(self._trigger)

    async def stop(self) -> None:
        self._running.discard(self._trigger)


class MemoryKind:
    """A source kind that records which of its triggers run; ``alone`` triggers are
    the ones with ``{"alone": true}`` in their options."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.running: set[str] = set()

    def validate(self, options: Mapping[str, Any], *, where: str) -> None:
        return None

    def create(self, context: SourceContext) -> MemorySource:
        return MemorySource(self.running, context.trigger_id)

    def one_per_cluster(self, options: Mapping[str, Any]) -> bool:
        return bool(options.get("alone"))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    async with SqlStore(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}") as opened:
        yield opened


@contextlib.asynccontextmanager
async def managing(
    store: SqlStore, tmp_path: Path, triggers: list[TriggerRecord], *, leading: bool
) -> AsyncIterator[tuple[MemoryKind, SourceManager]]:
    """A started manager of ``memory`` sources for ``triggers`` (of function ``f``), on
    a memory bus; stopped with it on leaving."""
    kind = MemoryKind("memory")
    await store.put_function_version("f", {}, "d" * 64, "v1")
    await store.replace_triggers("f", triggers)
    bus = MemoryBus()
    await bus.start()
    manager = SourceManager(bus, store, kinds=[kind], data_dir=tmp_path, leading=leading)
    await manager.start()
    try:
        yield kind, manager
    finally:
        await manager.stop()
        await bus.stop()


def memory_trigger(name: str, **options: Any) -> TriggerRecord:
    return TriggerRecord(
        f"f.{name}", "f", f"_source.f.{name}", config={"source": {"kind": "memory", **options}}
    )


async def test_only_the_leading_node_runs_triggers_that_must_run_alone(
    store: SqlStore, tmp_path: Path
) -> None:
    triggers = [memory_trigger("shared"), memory_trigger("alone", alone=True)]
    async with managing(store, tmp_path, triggers, leading=False) as (kind, manager):
        assert kind.running == {"f.shared"}
        await manager.lead(True)
        assert kind.running == {"f.shared", "f.alone"}
        await manager.lead(False)
        assert kind.running == {"f.shared"}


async def test_a_node_that_loses_the_lead_with_its_store_stops_them_all_the_same(
    store: SqlStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    triggers = [memory_trigger("shared"), memory_trigger("alone", alone=True)]
    async with managing(store, tmp_path, triggers, leading=True) as (kind, manager):
        assert kind.running == {"f.shared", "f.alone"}

        async def away() -> list[TriggerRecord]:
            raise AdapterError("cannot reach the store: connection refused")

        monkeypatch.setattr(store, "list_triggers", away)
        await manager.lead(False)  # the lease was lost because the store went away
        assert kind.running == {"f.shared"}


async def test_losing_the_lead_does_not_wait_for_a_refresh_held_up_by_the_store(
    store: SqlStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    triggers = [memory_trigger("alone", alone=True)]
    async with managing(store, tmp_path, triggers, leading=True) as (kind, manager):
        answered = asyncio.Event()
        reading = asyncio.Event()
        listed = store.list_triggers

        async def slow() -> list[TriggerRecord]:
            reading.set()
            await answered.wait()  # a store that answers only much later
            return await listed()

        monkeypatch.setattr(store, "list_triggers", slow)
        refreshing = asyncio.create_task(manager.refresh())  # a deploy elsewhere, say
        try:
            await reading.wait()
            # The lease is lost meanwhile: its sources stop now, within the lease's
            # last third, not once the store answers the refresh.
            await asyncio.wait_for(manager.lead(False), 1)
            assert kind.running == set()
            answered.set()
            await refreshing
            assert kind.running == set()  # the refresh does not start them again
        finally:
            answered.set()


async def test_a_refresh_older_than_the_one_in_force_changes_nothing(
    store: SqlStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one, two = memory_trigger("one"), memory_trigger("two")
    async with managing(store, tmp_path, [one], leading=True) as (kind, manager):
        answered = asyncio.Event()
        reading = asyncio.Event()
        listed = store.list_triggers
        before = await listed()

        async def stale() -> list[TriggerRecord]:
            reading.set()
            await answered.wait()
            return before  # what the store held when this read began

        monkeypatch.setattr(store, "list_triggers", stale)
        slow = asyncio.create_task(manager.refresh())
        try:
            await reading.wait()
            await store.replace_triggers("f", [one, two])
            monkeypatch.setattr(store, "list_triggers", listed)
            await manager.refresh()  # a later read, applied first
            assert kind.running == {"f.one", "f.two"}
            answered.set()
            await slow
            assert kind.running == {"f.one", "f.two"}  # not taken back by the older read
        finally:
            answered.set()


async def test_a_refresh_that_comes_back_after_the_stop_starts_nothing(
    store: SqlStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with managing(store, tmp_path, [], leading=True) as (kind, manager):
        answered = asyncio.Event()
        reading = asyncio.Event()
        listed = store.list_triggers

        async def slow() -> list[TriggerRecord]:
            reading.set()
            await answered.wait()
            return await listed()

        await store.replace_triggers("f", [memory_trigger("late")])
        monkeypatch.setattr(store, "list_triggers", slow)
        refreshing = asyncio.create_task(manager.refresh())
        await reading.wait()
        await manager.stop()  # the node stops while the store has not answered
        answered.set()
        await refreshing
        assert kind.running == set()


@pytest.mark.parametrize(
    ("kind", "options", "alone"),
    [
        ("mqtt", {"url": "mqtt://broker", "topics": ["a/#"]}, True),
        ("redis-pubsub", {"url": "redis://r", "channels": ["c"]}, True),
        ("postgres", {"url": "postgresql://db/x", "channels": ["c"]}, True),
        ("amqp", {"url": "amqp://mq", "exchange": "events"}, True),
        ("amqp", {"url": "amqp://mq", "queue": "orders"}, False),
        ("redis", {"url": "redis://r", "stream": "s"}, False),
        ("nats", {"url": "nats://n", "subject": "a.>"}, False),
        ("jetstream", {"url": "nats://n", "stream": "S"}, False),
        ("outbox", {"url": "postgresql://db/x", "table": "outbox"}, False),
    ],
)
def test_broker_kinds_that_would_give_every_node_each_message_run_alone(
    kind: str, options: dict[str, Any], alone: bool
) -> None:
    [found] = [k for k in broker_kinds() if k.name == kind]
    assert found.one_per_cluster(options) is alone
