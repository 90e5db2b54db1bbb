"""Targets, ``brokers:`` and ``destinations:`` in the manifest: what is accepted, and
the message a mistake gets."""

from __future__ import annotations

from pathlib import Path

import pytest

from triggerfish.errors import ConfigError, ValidationError
from triggerfish.functions.brokers import Target, parse_target
from triggerfish.functions.manifest import parse_manifest


@pytest.mark.parametrize(
    ("text", "target"),
    [
        ("orders", Target(None, "orders")),
        ("alerts-mq:sensors.hot", Target("alerts-mq", "sensors.hot")),
        ("r:a:b", Target("r", "a:b")),
        ("mqtt:site/+/x", Target("mqtt", "site/+/x")),
    ],
)
def test_targets(text: str, target: Target) -> None:
    assert parse_target(text) == target
    assert str(parse_target(text)) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected an internal topic"),
        ("bad topic", "invalid target 'bad topic'"),
        ("Bad:x", "the broker name before ':'"),
        ("mq:", "give the address after 'mq:'"),
    ],
)
def test_bad_targets(text: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parse_target(text)


def manifest(text: str) -> object:
    return parse_manifest(text, Path("triggerfish.yaml"))


def test_brokers_and_destinations_are_read() -> None:
    m = manifest(
        """
brokers:
  mq: {kind: amqp, url: "amqp://u:${PASS}@localhost/", exchange: events}
  cache: {kind: redis, url: "redis://localhost", maxlen: 1000}
functions:
  f:
    handler: main.handler
    destinations: {on_success: "mq:done", on_failure: failures}
"""
    )
    assert m.brokers["mq"].exchange == "events"  # type: ignore[attr-defined]
    assert m.brokers["cache"].maxlen == 1000  # type: ignore[attr-defined]
    config = m.functions["f"]  # type: ignore[attr-defined]
    assert config.destinations.on_success == "mq:done"
    assert config.version_config()["destinations"]["on_failure"] == "failures"


def test_a_function_without_destinations_keeps_its_version_config() -> None:
    m = manifest("functions:\n  f: {handler: main.handler}\n")
    assert "destinations" not in m.functions["f"].version_config()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "brokers:\n  mq: {kind: amqp, url: 'amqp://x', maxlen: 3}\n",
            "brokers.mq: 'maxlen' is not an option of amqp brokers; besides kind, url, format,"
            " backoff and max_backoff they take: exchange",
        ),
        (
            "brokers:\n  mq: {kind: amqp, url: 'redis://x'}\n",
            "brokers.mq: url: amqp brokers need a url starting with amqp:// or amqps://",
        ),
        ("brokers:\n  mq: {kind: kafka, url: 'x://y'}\n", "brokers.mq.kind: expected one of"),
        ("brokers:\n  mq: {url: 'amqp://y'}\n", "brokers.mq.kind: missing"),
        (
            "brokers:\n  Bad: {kind: redis, url: 'redis://y'}\n",
            "brokers.Bad: expected a name of 1 to 64 characters",
        ),
        (
            "brokers:\n  pg: {kind: outbox, url: 'postgresql://y', payload_column: 'a;b'}\n",
            "payload_column: expected a column name",
        ),
    ],
)
def test_bad_brokers(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        manifest(text + "functions:\n  f: {handler: main.handler}\n")
    assert message in str(info.value)


def test_a_destination_naming_an_unknown_broker() -> None:
    with pytest.raises(ConfigError) as info:
        manifest("functions:\n  f: {handler: m.h, destinations: {on_success: 'nope:x'}}\n")
    assert str(info.value) == (
        "triggerfish.yaml: functions.f.destinations.on_success: no broker named 'nope'"
        " (brokers: none declared); declare it under 'brokers:'"
    )


def test_a_destination_that_is_not_a_target() -> None:
    with pytest.raises(ConfigError, match=r"functions\.f\.destinations: on_failure: invalid"):
        manifest("functions:\n  f: {handler: m.h, destinations: {on_failure: 'a b'}}\n")
