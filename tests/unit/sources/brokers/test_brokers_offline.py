"""Broker sources without a broker: URLs and secrets, message conversion, options
checked at deploy time, and the reconnect loop facing a closed port."""

from __future__ import annotations

import asyncio
import re
import socket
from pathlib import Path

import pytest

from triggerfish.bus.memory import MemoryBus
from triggerfish.errors import ConfigError
from triggerfish.sources.base import SourceContext
from triggerfish.sources.brokers import broker_kinds
from triggerfish.sources.brokers.convert import Converter, DroppedMessage, Message
from triggerfish.sources.brokers.urls import expand_url, public_url, redact_url

EXTENSION_NAME = re.compile(r"^[a-z0-9]{1,20}$")


def test_url_secrets_come_from_the_environment_and_are_redacted() -> None:
    template = "amqp://app:${TF_PW}@mq.local:5672/prod"
    url = expand_url(template, {"TF_PW": "s3cr3t"})
    assert url == "amqp://app:s3cr3t@mq.local:5672/prod"
    assert redact_url(url) == "amqp://app:***@mq.local:5672/prod"
    assert public_url(url) == "amqp://mq.local:5672/prod"
    with pytest.raises(ConfigError, match="TF_PW is not set"):
        expand_url(template, {})


def test_json_text_and_binary_payloads_become_event_data() -> None:
    convert = Converter(source="redis://h:6379/0/orders", event_type="t")
    as_json = convert.event(Message(payload=b'{"n": 1}', subject="orders", stable_id="1-0"))
    assert (as_json.id, as_json.data_value(), as_json.subject) == ("1-0", {"n": 1}, "orders")
    text = convert.event(Message(payload=b"hello", subject="s")).to_dict()
    assert (text["data"], text["datacontenttype"]) == ("hello", "text/plain; charset=utf-8")
    binary = convert.event(Message(payload=b"\xff\x00", subject="s")).to_dict()
    assert binary["datacontenttype"] == "application/octet-stream"
    assert binary["data_base64"] == "/wA="
    declared = convert.event(Message(payload=b"<a/>", subject="s", content_type="application/xml"))
    assert declared.datacontenttype == "application/xml"
    assert convert.event(Message(payload=b"", subject="s")).data is None


def test_broker_metadata_becomes_documented_extensions() -> None:
    convert = Converter(source="s", event_type="t")
    event = convert.event(
        Message(
            payload=b"{}",
            subject="a.b",
            message_id="42",
            headers={"X-Trace": "abc"},
            delivery_count=3,
            extensions={"amqpexchange": "orders", "amqpredelivered": True},
        )
    )
    assert event.extensions["brokermsgid"] == "42"
    assert event.extensions["deliverycount"] == 3
    assert event.extensions["brokerheaders"] == '{"X-Trace":"abc"}'
    assert all(EXTENSION_NAME.match(name) for name in event.extensions)


def test_structured_format_keeps_the_envelope_and_drops_what_is_not_one() -> None:
    convert = Converter(source="s", event_type="t", structured=True)
    body = b'{"specversion": "1.0", "id": "x1", "source": "shop", "type": "order.paid"}'
    event = convert.event(Message(payload=body, subject="q", message_id="m"))
    assert (event.id, event.source, event.type) == ("x1", "shop", "order.paid")
    assert event.extensions["brokermsgid"] == "m"
    with pytest.raises(DroppedMessage):
        convert.event(Message(payload=b"not an event", subject="q"))


KINDS = {kind.name: kind for kind in broker_kinds()}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"kind": "redis", "url": "redis://h"}, r"source\.stream: Field required"),
        ({"kind": "redis", "url": "http://h", "stream": "s"}, "expected a url starting with"),
        ({"kind": "redis", "url": "redis://${TF_NOPE}", "stream": "s"}, "TF_NOPE is not set"),
        ({"kind": "redis-pubsub", "url": "redis://h"}, "give channels, patterns, or both"),
        ({"kind": "nats", "url": "nats://h", "subject": []}, r"source\.subject"),
        ({"kind": "jetstream", "url": "nats://h", "stream": "s", "bogus": 1}, r"bogus"),
        ({"kind": "amqp", "url": "amqp://h"}, "give a queue, an exchange"),
        ({"kind": "mqtt", "url": "mqtt://h", "topic": "a/#", "qos": 3}, r"source\.qos"),
        ({"kind": "mqtt", "url": "mqtt://h", "topic": "a/#/b"}, r"'a/#/b': # stands alone"),
        ({"kind": "mqtt", "url": "mqtt://h", "topic": ["ok", "a#"]}, r"'a#': # stands alone"),
        ({"kind": "mqtt", "url": "mqtt://h", "topic": "a/b+"}, r"'a/b\+': \+ stands alone"),
        ({"kind": "mqtt", "url": "mqtt://h", "topic": ""}, r"at least one character"),
        ({"kind": "mqtt", "url": "mqtt://h", "topic": "$share//a"}, r"the group without"),
        ({"kind": "mqtt", "url": "mqtt://h", "topic": "$share/g"}, r"needs a filter after"),
        ({"kind": "postgres", "url": "postgresql://h"}, r"source\.channel"),
        ({"kind": "outbox", "url": "postgresql://h", "table": "x; drop"}, "plain SQL name"),
    ],
)
def test_options_are_checked_at_deploy_time(options: dict[str, object], message: str) -> None:
    kind = KINDS[str(options["kind"])]
    with pytest.raises(ConfigError, match=message):
        kind.validate(options, where="triggerfish.yaml: functions.f.triggers[0].source")


@pytest.mark.parametrize(
    "topic", ["#", "+", "/", "a/+/c", "+/+", "sensors/#", "a//b", "$share/g/a/#", "$SYS/#"]
)
def test_every_valid_mqtt_filter_is_taken(topic: str) -> None:
    KINDS["mqtt"].validate({"kind": "mqtt", "url": "mqtt://h", "topic": topic}, where="source")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_an_unreachable_broker_is_retried_with_backoff_and_no_secret_is_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("TF_TEST_SECRET", "hunter2-very-secret")
    options = {
        "kind": "redis",
        "url": f"redis://app:${{TF_TEST_SECRET}}@127.0.0.1:{closed_port()}/0",
        "stream": "orders",
        "backoff": 0.01,
        "max_backoff": 0.02,
    }
    bus = MemoryBus()
    context = SourceContext(
        trigger_id="f.orders",
        function="f",
        topic="_source.f.orders",
        options=options,
        config={"source": options},
        bus=bus,
        store=None,  # type: ignore[arg-type]
        data_dir=tmp_path,
    )
    source = KINDS["redis"].create(context)
    await source.start()
    try:
        for _ in range(200):
            if source.stats()["reconnects"] >= 3:
                break
            await asyncio.sleep(0.01)
    finally:
        await source.stop()
    stats = source.stats()
    assert stats["reconnects"] >= 3
    assert stats["connected"] is False
    assert "hunter2" not in caplog.text + str(stats)
    assert "redis://app:***@127.0.0.1" in caplog.text
    assert "reconnecting in" in caplog.text
