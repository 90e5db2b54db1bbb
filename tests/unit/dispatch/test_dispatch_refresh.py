"""A trigger whose stored pattern this release refuses (rules that grew stricter)
does not keep the node's other triggers from starting; its events wait in its topic."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from triggerfish.bus.memory import MemoryBus
from triggerfish.dispatch.dispatcher import Dispatcher
from triggerfish.dispatch.emitter import Emitter
from triggerfish.dispatch.policy import Subscription
from triggerfish.errors import NotFoundError
from triggerfish.events.model import Event
from triggerfish.observe.recorder import Recorder
from triggerfish.runtime.base import FunctionSpec
from triggerfish.store.sql import SqlStore

GOOD = Subscription(id="work.jobs", function="work", topic="jobs")
# Mixed strings and numbers in anything-but: AWS refuses it, so this release does.
STALE = Subscription(
    id="old.jobs", function="old", topic="old-jobs", filters=({"n": [{"anything-but": ["x", 1]}]},)
)


async def test_a_refused_stored_pattern_stops_only_its_own_trigger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def no_function(function: str, qualifier: str) -> FunctionSpec:
        raise NotFoundError(f"no function {function}")

    bus = MemoryBus()
    await bus.start()
    async with SqlStore(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}") as store:
        dispatcher = Dispatcher(
            bus,
            executor=object(),  # type: ignore[arg-type]  # nothing is invoked
            store=store,
            resolve=no_function,
            recorder=Recorder(store),
            emitter=Emitter(bus),
        )

        async def desired() -> list[Subscription]:
            return [STALE, GOOD]

        monkeypatch.setattr(dispatcher, "desired", desired)
        with caplog.at_level(logging.ERROR, logger="triggerfish.dispatch"):
            await dispatcher.refresh()
        try:
            assert dispatcher.subscription(GOOD.id) == GOOD
            assert dispatcher.subscription(STALE.id) is None
            assert "trigger old.jobs cannot start" in caplog.text
            assert "deploy old again" in caplog.text
            # Its events are kept, not lost: the topic exists and holds them.
            await bus.publish("old-jobs", [Event(id="e-1", source="t", type="job")])
            assert [s.event.id for s in await bus.read("old-jobs")] == ["e-1"]
        finally:
            await dispatcher.stop(grace=0.1)
            await bus.stop()
