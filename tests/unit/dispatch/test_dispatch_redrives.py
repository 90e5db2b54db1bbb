"""Redriving one dead letter in process, on the memory bus and the embedded SQLite bus
with a real store: the event goes to its trigger's redrive topic, leaves the listing,
and a redrive of all sends only the others."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from triggerfish.bus.base import Bus
from triggerfish.bus.memory import MemoryBus
from triggerfish.bus.sqlite import SqliteBus
from triggerfish.dispatch.dispatcher import Dispatcher
from triggerfish.dispatch.emitter import Emitter
from triggerfish.dispatch.policy import Subscription
from triggerfish.errors import NotFoundError
from triggerfish.events.model import Event
from triggerfish.observe.recorder import Recorder
from triggerfish.store.sql import SqlStore

TRIGGER = Subscription(id="work.jobs", function="work", topic="jobs", dead_letter="jobs-failed")
DLQ = TRIGGER.dead_letter_topic


@pytest.fixture(params=["memory", "sqlite"])
async def bus(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Bus]:
    opened: Bus = MemoryBus() if request.param == "memory" else SqliteBus(tmp_path / "bus.db")
    await opened.start()
    try:
        yield opened
    finally:
        await opened.stop()


@pytest.fixture
async def dispatcher(
    bus: Bus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Dispatcher]:
    async with SqlStore(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}") as store:
        built = Dispatcher(
            bus,
            executor=object(),  # type: ignore[arg-type]  # redrives never run a function
            store=store,
            resolve=object(),  # type: ignore[arg-type]
            recorder=Recorder(store),
            emitter=Emitter(bus),
        )
        await built.ensure_topics([TRIGGER])
        # The trigger as if it ran: redrives look up the trigger an event failed in.
        monkeypatch.setattr(built, "subscription", {TRIGGER.id: TRIGGER}.get)
        yield built


async def dead_letter(bus: Bus, *ids: str, trigger: str = TRIGGER.id) -> None:
    events = [
        Event(id=i, source="t", type="job", extensions={"errortrigger": trigger}) for i in ids
    ]
    await bus.publish(DLQ, events, dedupe=False)


async def sent_back(bus: Bus) -> list[str]:
    return [s.event.id for s in await bus.read(TRIGGER.redrive_topic)]


async def waiting(dispatcher: Dispatcher) -> tuple[int, list[str]]:
    pending, items = await dispatcher.redrives.pending(DLQ, limit=100)
    return pending, [s.event.id for s in items]


async def test_one_is_redriven_and_the_others_stay(dispatcher: Dispatcher, bus: Bus) -> None:
    await dead_letter(bus, "a", "b", "c")

    assert await dispatcher.redrive_event(DLQ, "b") == (1, 0)
    assert await sent_back(bus) == ["b"]
    (redriven,) = await bus.read(TRIGGER.redrive_topic)
    assert "errortrigger" not in redriven.event.extensions
    assert await waiting(dispatcher) == (2, ["a", "c"])
    with pytest.raises(NotFoundError, match="no event 'b' waits"):
        await dispatcher.redrive_event(DLQ, "b")

    assert await dispatcher.redrive(DLQ) == (2, 0)
    assert await sent_back(bus) == ["b", "a", "c"]
    assert await waiting(dispatcher) == (0, [])
    assert await dispatcher.redrives.marked(DLQ) == {}  # forgotten once passed
    # The ones before and after stay redrivable alone too, until redriven.
    await dead_letter(bus, "d")
    assert await dispatcher.redrive_event(DLQ, "d") == (1, 0)
    assert await waiting(dispatcher) == (0, [])


async def test_the_first_waiting_event_of_an_id_is_the_one(
    dispatcher: Dispatcher, bus: Bus
) -> None:
    await dead_letter(bus, "a", "x", "a")
    assert await dispatcher.redrive_event(DLQ, "a") == (1, 0)
    assert await waiting(dispatcher) == (2, ["x", "a"])
    assert await dispatcher.redrive_event(DLQ, "a") == (1, 0)
    assert await waiting(dispatcher) == (1, ["x"])
    assert await dispatcher.redrive(DLQ) == (1, 0)
    assert await sent_back(bus) == ["a", "a", "x"]


async def test_an_event_of_a_trigger_gone_is_skipped_and_stays(
    dispatcher: Dispatcher, bus: Bus
) -> None:
    await dead_letter(bus, "orphan", trigger="removed.trigger")
    assert await dispatcher.redrive_event(DLQ, "orphan") == (0, 1)
    assert await sent_back(bus) == []
    assert await waiting(dispatcher) == (1, ["orphan"])


async def test_an_unknown_id_is_not_found(dispatcher: Dispatcher, bus: Bus) -> None:
    await dead_letter(bus, "a")
    with pytest.raises(NotFoundError, match="no event 'nope' waits in 'jobs-failed'"):
        await dispatcher.redrive_event(DLQ, "nope")
    assert await waiting(dispatcher) == (1, ["a"])
