"""What a function may emit to: its own topics and brokers, never Triggerfish's own
topics (``_invoke.<function>`` would run a function without the permission to)."""

from __future__ import annotations

import pytest

from triggerfish.bus.memory import MemoryBus
from triggerfish.dispatch.emitter import Emitter
from triggerfish.errors import ValidationError
from triggerfish.events.model import Event

EVENT = Event(id="e-1", source="/test", type="t")


@pytest.mark.parametrize("target", ["_invoke.other", "_redrive.f.t", "_bucket.photos"])
def test_triggerfish_s_own_topics_are_refused(target: str) -> None:
    with pytest.raises(ValidationError, match="starts with '_'"):
        Emitter(MemoryBus()).route(target, EVENT)


def test_a_topic_of_the_user_s_is_routed_as_it_is() -> None:
    assert Emitter(MemoryBus()).route("orders", EVENT) == ("orders", EVENT)
