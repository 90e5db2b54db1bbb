"""Dead-letter topics get the node's default retention, and the group that redrives
them holds none of their events: the housekeeping pass trims them like any topic."""

from __future__ import annotations

from pathlib import Path

from support.stores import Clock
from triggerfish.bus.sqlite import SqliteBus
from triggerfish.dispatch.dispatcher import async_subscription
from triggerfish.dispatch.redrives import REDRIVE_GROUP
from triggerfish.events.model import Event
from triggerfish.node import Node


def event(n: int) -> Event:
    return Event(id=f"evt-{n}", source="/shop", type="order.failed")


async def test_a_dead_letter_topic_is_made_with_the_default_retention(node: Node) -> None:
    subscription = async_subscription("resize", {"dead_letter": "resize-failed"})
    await node.dispatcher.ensure_topics([subscription])

    info = await node.bus.topic("resize-failed")

    assert info.retention == node.settings.retention


async def test_dead_lettered_events_past_retention_are_trimmed(tmp_path: Path) -> None:
    clock = Clock(1_800_000_000.0)
    async with SqliteBus(tmp_path / "bus.db", clock=clock) as bus:
        await bus.create_topic("resize-failed", retention=3600)
        await bus.subscribe("resize-failed", REDRIVE_GROUP, start="earliest")
        await bus.publish("resize-failed", [event(1), event(2), event(3)], dedupe=False)
        [redriving] = await bus.fetch("resize-failed", REDRIVE_GROUP, max_count=1, lease=7200)
        clock.now += 3601

        assert await bus.trim() == 2

        kept = [stored.event.id for stored in await bus.read("resize-failed")]
        assert kept == [redriving.event.id]
