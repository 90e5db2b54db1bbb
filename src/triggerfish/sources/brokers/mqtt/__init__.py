"""MQTT source: topic filters, QoS 0/1/2, persistent sessions, MQTT 3.1.1 and 5, with
Triggerfish's own client (``client.py``; its packets in ``wire.py``), which reads
messages in batches.

The client connects with a fixed client id per trigger (``triggerfish-<trigger>``
unless ``client_id`` says otherwise) and a persistent session (``clean_session`` off
in MQTT 3.1.1; clean start off and a ``session_expiry`` in MQTT 5), so the broker keeps
the subscriptions, and queues QoS 1 and 2 messages, while Triggerfish is away: they
arrive when it comes back (the broker's own limits apply, such as Mosquitto's
``max_queued_messages``; QoS 0 messages are not queued).

In MQTT 5 the client asks for ``2 * batch`` QoS 1/2 messages in flight (Receive
Maximum), so the broker sends the next batch while one is being committed; in MQTT
3.1.1 the broker's own limit applies (Mosquitto's ``max_inflight_messages``, 20 by
default).

Messages are acknowledged only after the batch holding them was committed to the
trigger's topic (PUBACK for QoS 1, PUBREC for QoS 2), while the next batch is read.
What that gives, with ``qos`` the subscription's maximum QoS (a message is delivered
at the lower of its publish and subscription QoS):

- QoS 1: at least once, across crashes. A message whose PUBACK was not sent is sent
  again by the broker when the same session reconnects.
- QoS 2: at least once across crashes, and exactly once while the process lives. A
  message whose PUBREC was not sent is sent again, like QoS 1; after PUBREC, the client
  knows the message until the broker releases it, and does not take it twice (a crash
  between the commit and the PUBREC is the one way to a duplicate).
- QoS 0: at most once.

A trigger whose every topic is a shared subscription (``$share/<group>/<filter>``,
MQTT 5 and Mosquitto's 3.1.1) runs on every node of a cluster: the broker hands each
message to one member of the group, and each node is a member with a client id of its
own (the trigger's, and a digest of the node's data directory: stable across restarts).
The broker keeps routing a dead member's share to its persistent session, so what a
killed node held, and what came for it while it was down, arrives when it is back.

Messages carry ``mqttqos`` and ``mqttretain``. A retained message is sent again at
every subscription in MQTT 3.1.1; MQTT 5 (``protocol: 5``, the default) asks the broker
to send retained messages only when the subscription is new.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, field_validator

from triggerfish.events.model import ExtensionValue
from triggerfish.ids import node_tag
from triggerfish.sources.brokers.base import (
    BrokerContext,
    BrokerKind,
    BrokerOptions,
    BrokerSource,
    Overlap,
    log,
    safe_name,
)
from triggerfish.sources.brokers.convert import Message
from triggerfish.sources.brokers.mqtt import wire
from triggerfish.sources.brokers.mqtt.client import MqttClient, Session, address_of
from triggerfish.sources.brokers.mqtt.wire import Publish


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class MqttOptions(BrokerOptions):
    topic: list[str] = Field(min_length=1)  # one filter or a list; + and # allowed
    qos: Literal[0, 1, 2] = 1
    client_id: str | None = Field(default=None, min_length=1, max_length=128)
    persistent: bool = True  # keep the session (and queued messages) across connections
    protocol: Literal["3.1.1", "5"] = "5"
    session_expiry: int = Field(default=7 * 86400, ge=0)  # seconds, MQTT 5
    keepalive: int = Field(default=30, ge=5, le=3600)

    _lists = field_validator("topic", mode="before")(_as_list)

    @field_validator("topic")
    @classmethod
    def _filters(cls, topics: list[str]) -> list[str]:
        for topic in topics:
            problem = filter_problem(topic)
            if problem:
                raise ValueError(f"topic filter {topic!r}: {problem}")
        return topics

    @field_validator("protocol", mode="before")
    @classmethod
    def _protocol_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int | float) else value


def filter_problem(topic: str) -> str | None:
    """What makes ``topic`` no MQTT topic filter (a broker would drop the connection
    on it), or None: ``#`` only as the whole last level, ``+`` only as a whole level,
    and ``$share/<group>/<filter>`` with a group name and a filter."""
    if topic.startswith("$share/"):
        group, _, rest = topic[len("$share/") :].partition("/")
        if not group or "+" in group or "#" in group:
            return "a shared subscription is $share/<group>/<filter>, the group without + or #"
        if not rest:
            return "a shared subscription needs a filter after its group: $share/<group>/<filter>"
        topic = rest
    if not topic:
        return "a filter is at least one character"
    if len(topic.encode()) > 65535:
        return "longer than 65,535 bytes"
    if "\0" in topic:
        return "holds a null character"
    levels = topic.split("/")
    for number, level in enumerate(levels):
        if "#" in level and (level != "#" or number != len(levels) - 1):
            return "# stands alone as the last level (a/#), and matches the rest"
        if "+" in level and level != "+":
            return "+ stands alone as a whole level (a/+/c)"
    return None


def shared(topics: list[str]) -> bool:
    """Whether every filter is a shared subscription (``$share/<group>/<filter>``)."""
    return bool(topics) and all(topic.startswith("$share/") for topic in topics)


def receive_maximum(batch: int) -> int:
    """MQTT 5 Receive Maximum for a source taking ``batch`` messages per commit: room
    for the next batch while one is committed."""
    return min(65535, max(20, 2 * batch))


class MqttSource(BrokerSource[MqttOptions]):
    kind = "mqtt"
    default_type = "mqtt.message"

    def __init__(self, context: BrokerContext, options: MqttOptions) -> None:
        super().__init__(context, options)
        self._session = Session()  # what lasts beyond one connection

    @property
    def client_id(self) -> str:
        if self.options.client_id:
            return self.options.client_id
        name = f"triggerfish-{self.context.trigger_id}"
        if shared(self.options.topic):
            # Each node of a cluster is a member of the shared subscription: one id each.
            name = f"{name}-{node_tag(self.context.data_dir)}"
        return safe_name(name)

    async def consume(self) -> None:
        options = self.options
        client = MqttClient(
            address_of(self.url),
            self.client_id,
            protocol=wire.V5 if options.protocol == "5" else wire.V311,
            keepalive=options.keepalive,
            clean_start=not options.persistent,
            session_expiry=options.session_expiry if options.persistent else 0,
            # Unacknowledged QoS 1/2 messages the broker may send: without it Mosquitto
            # keeps 20 in flight, and a batch waits for its commit before more come.
            receive_maximum=receive_maximum(options.batch),
            session=self._session,
        )
        try:
            await client.connect()
            # Retained messages only when the subscription is new (MQTT 5).
            granted = await client.subscribe([(t, options.qos) for t in options.topic], 1)
            for topic, qos in zip(options.topic, granted, strict=True):
                if qos < options.qos:
                    log.warning(
                        "mqtt source of trigger %s: the broker grants %r QoS %d, not %d: its "
                        "messages arrive %s", self.context.trigger_id, topic, qos, options.qos,
                        "at most once" if qos == 0 else "at least once",
                    )  # fmt: skip
            self.connected()
            async with Overlap() as overlap:
                while True:
                    batch = await client.take(options.batch)
                    await overlap.submit(self._handle(client, batch))
        finally:
            await client.close()

    async def _handle(self, client: MqttClient, batch: list[Publish]) -> None:
        await self.commit([self._message(message) for message in batch])
        client.acknowledge(batch)

    def _message(self, message: Publish) -> Message:
        headers: dict[str, str] = {}
        content_type = None
        properties = message.properties
        if properties is not None:
            for name, value in properties.get("user_property", ()):
                headers[name] = value
            content_type = properties.get("content_type")
        extensions: dict[str, ExtensionValue] = {
            "mqttqos": message.qos,
            "mqttretain": message.retain,
        }
        return Message(
            payload=message.payload,
            subject=message.topic,
            headers=headers or None,
            content_type=content_type,
            extensions=extensions,
        )


class MqttKind(BrokerKind[MqttOptions]):
    name = "mqtt"
    schemes = ("mqtt", "mqtts", "tcp")
    options_model = MqttOptions
    source_class = MqttSource

    def one_per_cluster(self, options: Mapping[str, Any]) -> bool:
        """One client id and persistent session per trigger: one node connects at a
        time, and the node that takes over resumes the session, with what it holds.
        Shared subscriptions with the default client ids run on every node instead."""
        topics = _as_list(options.get("topic")) or []
        return not (shared([str(t) for t in topics]) and not options.get("client_id"))
