"""Emits and destinations to every broker kind, against the real servers: a function
emits to ``<broker>:<address>`` and a client of the broker receives the message with
the event's data as the body and its CloudEvents attributes beside it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from integration.brokers.cases import AMQP_URL, HOST, REDIS_URL, eventually, unique_name
from integration.sinks.cases import CASES, JetStreamSink, SinkCase, emitter_project
from support.services import require_port
from triggerfish.config import Settings
from triggerfish.events.create import new_event
from triggerfish.node import Node

pytestmark = pytest.mark.integration


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    made = Node(Settings(data_dir=tmp_path / "data", shutdown_grace=2.0))
    await made.start()
    yield made
    await made.stop()


@pytest.fixture(params=CASES, ids=[c.kind for c in CASES])
async def case(request: pytest.FixtureRequest) -> AsyncIterator[SinkCase]:
    kind: type[SinkCase] = request.param
    require_port(HOST, kind.port, kind.what)
    made = kind(unique_name())
    await made.listen()
    yield made
    await made.close()


async def publish(node: Node, topic: str, *datas: dict[str, Any]) -> list[str]:
    events = [new_event(source="tests", type="reading", data=data) for data in datas]
    await node.bus.publish(topic, events)
    return [e.id for e in events]


async def test_an_emit_reaches_each_broker_with_body_and_attributes(
    node: Node, tmp_path: Path, case: SinkCase
) -> None:
    topic = unique_name("in-")
    target = f"out:{case.address()}"
    await node.control.deploy_manifest(
        emitter_project(tmp_path, topic=topic, targets=[target], brokers={"out": case.broker()})
    )
    (cause,) = await publish(node, topic, {"n": 1})

    got = await eventually(case.received, what=f"a message on {case.kind}")
    assert len(got) == 1
    message = got[0]
    assert message.json() == {"t": 42, "n": 1}
    if case.headers:
        prefix = case.prefix
        assert message.content_type == "application/json"
        assert message.headers[f"{prefix}type"] == "sensor.hot"
        assert message.headers[f"{prefix}source"] == "triggerfish://functions/emitter"
        assert message.headers[f"{prefix}subject"] == "s1"
        assert message.headers[f"{prefix}specversion"] == "1.0"
        assert message.headers[f"{prefix}causationid"] == cause
        assert message.headers[f"{prefix}site"] == "north"
        assert f"{prefix}sinkaddress" not in message.headers
        assert message.headers[f"{prefix}id"]
        if case.kind == "amqp":
            assert message.headers["message_id"] == message.headers[f"{prefix}id"]
            assert message.headers["persistent"] == "True"
    (stats,) = [s for s in node.sinks.stats() if s.broker == "out"]
    assert (stats.kind, stats.published, stats.connected) == (case.kind, 1, True)


async def test_structured_format_sends_the_cloudevent_as_json(node: Node, tmp_path: Path) -> None:
    require_port(HOST, 6379, "Redis")
    from integration.sinks.cases import RedisStreamSink

    case = RedisStreamSink(unique_name())
    topic = unique_name("in-")
    broker = {**case.broker(), "format": "cloudevent"}
    try:
        await node.control.deploy_manifest(
            emitter_project(
                tmp_path, topic=topic, targets=[f"s:{case.address()}"], brokers={"s": broker}
            )
        )
        await publish(node, topic, {"n": 7})
        (message,) = await eventually(case.received, what="a structured message")
        assert message.content_type == "application/cloudevents+json"
        event = message.json()
        assert event["type"] == "sensor.hot"
        assert event["data"] == {"t": 42, "n": 7}
        assert "sinkaddress" not in event
    finally:
        await case.close()


async def test_an_unknown_broker_fails_the_invocation_with_a_clear_error(
    node: Node, tmp_path: Path
) -> None:
    topic = unique_name("in-")
    await node.control.deploy_manifest(
        emitter_project(
            tmp_path,
            topic=topic,
            targets=["nowhere:x.y"],
            brokers={},
            retry={"max_attempts": 1},
        )
    )
    await publish(node, topic, {"n": 1})

    async def failed() -> list[Any]:
        records = await node.store.list_invocations(function="emitter")
        return [r for r in records if r.status == "error"]

    (record,) = await eventually(failed, what="a failed invocation")
    assert record.error_type == "EmitError"
    assert "no broker named 'nowhere'" in (record.error_message or "")


async def test_jetstream_retries_until_a_stream_takes_the_subject(
    node: Node, tmp_path: Path
) -> None:
    require_port(HOST, 4222, "NATS")
    case = JetStreamSink(unique_name())  # no stream yet: publishes fail with no responders
    topic = unique_name("in-")
    try:
        await node.control.deploy_manifest(
            emitter_project(
                tmp_path,
                topic=topic,
                targets=[f"js:{case.address()}"],
                brokers={"js": case.broker()},
            )
        )
        await publish(node, topic, {"n": 1}, {"n": 2}, {"n": 3})

        def failing() -> bool:
            return any(s.failures >= 2 for s in node.sinks.stats())

        await eventually(failing, what="failed publishes while there is no stream")
        assert await case.received() == []
        await case.create_stream()

        got = await eventually(
            lambda: _at_least(case, 3), what="the three messages once the stream exists"
        )
        assert sorted(m.json()["n"] for m in got) == [1, 2, 3]
        ids = [m.headers["Nats-Msg-Id"] for m in got]
        assert ids == [m.headers["ce-id"] for m in got]
    finally:
        await case.close()


async def _at_least(case: SinkCase, count: int) -> list[Any] | None:
    got = await case.received()
    return got if len(got) >= count else None


async def test_destinations_to_a_topic_and_to_a_broker(node: Node, tmp_path: Path) -> None:
    require_port(HOST, 5672, "RabbitMQ")
    from integration.sinks.cases import AmqpSink

    case = AmqpSink(unique_name())
    await case.listen()
    topic = unique_name("in-")
    failures = unique_name("failed-")
    try:
        await node.control.deploy_manifest(
            emitter_project(
                tmp_path,
                topic=topic,
                targets=[],
                brokers={"mq": {"kind": "amqp", "url": AMQP_URL, "exchange": "amq.topic"}},
                destinations={"on_success": f"mq:{case.address()}", "on_failure": failures},
                retry={"max_attempts": 2, "backoff": 0.05, "max_backoff": 0.1},
            )
        )
        ok, bad = await publish(node, topic, {"n": 1}, {"n": 2, "fail": True})

        (success,) = await eventually(case.received, what="the success record on RabbitMQ")
        record = success.json()
        assert success.headers["cloudEvents_type"] == "triggerfish.invocation.success"
        assert success.headers["cloudEvents_causationid"] == ok
        assert record["version"] == "1.0"
        assert record["requestContext"]["condition"] == "Success"
        assert record["requestContext"]["approximateInvokeCount"] == 1
        assert record["requestContext"]["functionArn"].endswith(":function:emitter:" +
               record["responseContext"]["executedVersion"])  # fmt: skip
        assert record["requestPayload"]["data"] == {"n": 1}
        assert record["responsePayload"] == {"handled": True}

        async def failure_records() -> list[Any]:
            return await node.bus.read(failures)

        (stored,) = await eventually(failure_records, what="the failure record on the topic")
        event = stored.event
        assert event.type == "triggerfish.invocation.failure"
        assert event.extensions["causationid"] == bad
        failure = orjson.loads(event.data or b"")
        assert failure["requestContext"]["condition"] == "RetriesExhausted"
        assert failure["requestContext"]["approximateInvokeCount"] == 2
        assert failure["requestPayload"]["data"] == {"n": 2, "fail": True}
        assert failure["responseContext"]["functionError"] == "Unhandled"
        assert failure["responsePayload"]["errorType"] == "RuntimeError"
    finally:
        await case.close()


async def test_async_invocations_send_success_records(node: Node, tmp_path: Path) -> None:
    require_port(HOST, 6379, "Redis")
    from integration.sinks.cases import RedisStreamSink

    case = RedisStreamSink(unique_name())
    try:
        await node.control.deploy_manifest(
            emitter_project(
                tmp_path,
                topic=unique_name("in-"),
                targets=[],
                brokers={"r": {"kind": "redis", "url": REDIS_URL}},
                destinations={"on_success": f"r:{case.address()}"},
            )
        )
        await node.invoker.invoke_async("emitter", b'{"hello": "world"}')
        (message,) = await eventually(case.received, what="the success record in the stream")
        record = message.json()
        assert record["requestPayload"] == {"hello": "world"}
        assert record["responsePayload"] == {"handled": True}
        assert message.headers["ce-type"] == "triggerfish.invocation.success"
    finally:
        await case.close()


async def test_events_waiting_for_a_broker_survive_a_restart(tmp_path: Path) -> None:
    require_port(HOST, 4222, "NATS")
    case = JetStreamSink(unique_name())
    topic = unique_name("in-")
    settings = Settings(data_dir=tmp_path / "data", shutdown_grace=2.0)
    first = Node(settings)
    await first.start()
    try:
        await first.control.deploy_manifest(
            emitter_project(
                tmp_path,
                topic=topic,
                targets=[f"js:{case.address()}"],
                brokers={"js": case.broker()},
            )
        )
        await publish(first, topic, {"n": 1}, {"n": 2})
        await eventually(
            lambda: any(s.failures for s in first.sinks.stats()), what="a failed publish"
        )
    finally:
        await first.stop()
    # The events wait on _sink.js in the bus; the next start sends them.
    await case.create_stream()
    second = Node(settings)
    await second.start()
    try:
        got = await eventually(lambda: _at_least(case, 2), what="both messages after restart")
        assert sorted(m.json()["n"] for m in got) == [1, 2]
    finally:
        await second.stop()
        await case.close()
