"""Every broker source kind against its real server, in the same shape: messages arrive
once as events, the trigger's pattern filters them, and a failing function is retried
and dead-lettered like on any topic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from integration.brokers.cases import BrokerCase, connected, eventually, handled, project
from triggerfish.node import Node

pytestmark = pytest.mark.integration


def payloads(count: int, **extra: object) -> list[bytes]:
    return [json.dumps({"n": n, **extra}).encode() for n in range(count)]


async def start(node: Node, tmp_path: Path, case: BrokerCase, **trigger: object) -> Path:
    out = tmp_path / "handled.jsonl"
    await node.control.deploy_manifest(project(tmp_path / "project", case, out, **trigger))
    await eventually(lambda: connected(node), what=f"the {case.kind} source to connect")
    return out


async def test_messages_arrive_once_as_events(node: Node, tmp_path: Path, case: BrokerCase) -> None:
    out = await start(node, tmp_path, case)
    await case.publish([*payloads(5), b"plain text"])

    events = await eventually(lambda: len(handled(out)) >= 6 and handled(out), what="6 events")
    by_n = sorted(e["data"]["n"] for e in events if isinstance(e["data"], dict))
    assert by_n == [0, 1, 2, 3, 4]
    text = [e for e in events if not isinstance(e["data"], dict)]
    assert [(t["data"], t["datacontenttype"]) for t in text] == [
        ("plain text", "text/plain; charset=utf-8")
    ]
    assert {e["subject"] for e in events} == {case.subject()}
    assert all(e["specversion"] == "1.0" and e["source"] for e in events)
    assert len({e["id"] for e in events}) == 6
    stats = (await node.bus.topic(node.dispatcher.subscriptions[-1].topic)).count
    assert stats >= 6


async def test_the_pattern_filters_broker_events(
    node: Node, tmp_path: Path, case: BrokerCase
) -> None:
    out = await start(node, tmp_path, case, pattern={"data": {"n": [{"numeric": [">=", 3]}]}})
    await case.publish(payloads(6))

    def settled() -> bool:
        return len(handled(out)) >= 3

    await eventually(settled, what="the matching events")
    topic = next(s.topic for s in node.dispatcher.subscriptions if s.topic.startswith("_source."))

    async def all_taken() -> bool:
        info = await node.bus.topic(topic)
        if info.count < 6:
            return False
        groups = [g for g in await node.bus.groups(topic) if g.topic == topic]
        return all(g.backlog == 0 and g.in_flight == 0 for g in groups)

    await eventually(all_taken, what="every event to be taken")
    assert sorted(e["data"]["n"] for e in handled(out)) == [3, 4, 5]


async def test_a_failing_function_is_retried_then_dead_lettered(
    node: Node, tmp_path: Path, case: BrokerCase
) -> None:
    dead = f"dl-{case.name}"
    out = await start(
        node,
        tmp_path,
        case,
        retry={"max_attempts": 2, "backoff": 0.05, "max_backoff": 0.1},
        dead_letter=dead,
    )
    await case.publish([b'{"n": 0}', b'{"n": 1, "fail": true}'])

    async def dead_lettered() -> list[object]:
        return list(await node.bus.read(dead))

    stored = await eventually(dead_lettered, what="the dead-lettered event")
    assert len(stored) == 1
    event = stored[0].event  # type: ignore[attr-defined]
    assert event.data_value() == {"n": 1, "fail": True}
    assert event.extensions["errorattempts"] == 2
    attempts = [e for e in handled(out) if e["data"].get("fail")]
    assert len(attempts) == 2
    assert [e["data"] for e in handled(out) if not e["data"].get("fail")] == [{"n": 0}]
