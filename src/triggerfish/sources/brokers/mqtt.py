"""MQTT source, with aiomqtt: topic filters, QoS 0/1/2 and persistent sessions.

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

Acknowledgements are manual: the client does not acknowledge a QoS 1 message (PUBACK)
or complete a QoS 2 one (PUBCOMP) on receipt, but after the batch holding it was
committed to the trigger's topic. What that gives, with ``qos`` the subscription's
maximum QoS (a message is delivered at the lower of its publish and subscription QoS):

- QoS 1: at least once, across crashes. A message whose PUBACK was not sent is sent
  again by the broker when the same session reconnects.
- QoS 2: exactly once between broker and client while the process lives. The MQTT
  client answers PUBREC on receipt and keeps the message in memory until PUBREL; if
  Triggerfish is killed in between, the broker resends only PUBREL and the message is
  lost. Subscribe with QoS 1 (the default) for at least once across crashes.
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
from urllib.parse import unquote, urlsplit

from pydantic import Field, field_validator

from triggerfish.events.model import ExtensionValue
from triggerfish.ids import node_tag
from triggerfish.sources.brokers.base import (
    BrokerKind,
    BrokerOptions,
    BrokerSource,
    require,
    safe_name,
)
from triggerfish.sources.brokers.convert import Message


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

    @field_validator("protocol", mode="before")
    @classmethod
    def _protocol_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int | float) else value


def shared(topics: list[str]) -> bool:
    """Whether every filter is a shared subscription (``$share/<group>/<filter>``)."""
    return bool(topics) and all(topic.startswith("$share/") for topic in topics)


def receive_maximum(batch: int) -> int:
    """MQTT 5 Receive Maximum for a source taking ``batch`` messages per commit: room
    for the next batch while one is committed."""
    return min(65535, max(20, 2 * batch))


def connect_client(aiomqtt: Any, url: str, identifier: str, **kwargs: Any) -> Any:
    """An aiomqtt client (not yet connected) for an ``mqtt://`` or ``mqtts://`` URL, with
    the user and password it holds; ``kwargs`` go to ``aiomqtt.Client`` as they are."""
    parts = urlsplit(url)
    if parts.scheme == "mqtts":
        import ssl

        kwargs["tls_context"] = ssl.create_default_context()
    return aiomqtt.Client(
        parts.hostname or "localhost",
        parts.port or (8883 if parts.scheme == "mqtts" else 1883),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        identifier=identifier,
        timeout=10,
        **kwargs,
    )


def share_property_tables(properties_mod: Any, packettypes: Any) -> None:
    """Make paho's MQTT 5 ``Properties`` share one copy of their lookup tables.

    paho builds three tables (the property names, their types, the packets each belongs
    to) in every ``Properties`` it makes, and it makes one for every MQTT 5 packet it
    decodes: the largest single cost of an MQTT 5 message in the source
    (docs/benchmarks.md). Nothing writes to those tables after they are built, so every
    instance can share the tables of the first.
    This relies on paho's attribute names, which
    tests/unit/sources/brokers/test_mqtt_private.py checks against the version range
    pinned in pyproject.toml. Safe to call more than once.
    """
    cls = properties_mod.Properties
    if cls.__dict__.get("_tables_shared"):
        return
    first = cls(packettypes.PacketTypes.PUBLISH)
    types, names, table = first.types, first.names, first.properties

    def __init__(self: Any, packetType: int) -> None:
        object.__setattr__(self, "packetType", packetType)
        object.__setattr__(self, "types", types)
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "properties", table)

    cls._unshared_init = cls.__init__  # kept for the test that compares the two
    cls.__init__ = __init__
    cls._tables_shared = True


def paho_client(client: Any) -> Any:
    """The paho client under an aiomqtt one (``client._client``, an attribute of aiomqtt's
    own, pinned with it in pyproject.toml): aiomqtt has no switch for manual acks."""
    return client._client


class MqttSource(BrokerSource[MqttOptions]):
    kind = "mqtt"
    default_type = "mqtt.message"

    @property
    def client_id(self) -> str:
        if self.options.client_id:
            return self.options.client_id
        name = f"triggerfish-{self.context.trigger_id}"
        if shared(self.options.topic):
            # Each node of a cluster is a member of the shared subscription: one id each.
            name = f"{name}-{node_tag(self.context.data_dir)}"
        return safe_name(name)

    def _client(self, aiomqtt: Any) -> Any:
        options = self.options
        v5 = options.protocol == "5"
        kwargs: dict[str, Any] = {}
        if v5:
            properties_mod = require("paho.mqtt.properties")
            packettypes = require("paho.mqtt.packettypes")
            share_property_tables(properties_mod, packettypes)
            properties = properties_mod.Properties(packettypes.PacketTypes.CONNECT)
            if options.persistent:
                properties.SessionExpiryInterval = options.session_expiry
            # Unacknowledged QoS 1/2 messages the broker may send: without it Mosquitto
            # keeps 20 in flight, and a batch waits for its commit before more come.
            properties.ReceiveMaximum = receive_maximum(options.batch)
            kwargs.update(
                protocol=aiomqtt.ProtocolVersion.V5,
                clean_start=not options.persistent,
                properties=properties,
            )
        else:
            kwargs.update(
                protocol=aiomqtt.ProtocolVersion.V311, clean_session=not options.persistent
            )
        client = connect_client(
            aiomqtt, self.url, self.client_id, keepalive=options.keepalive, **kwargs
        )
        # aiomqtt has no switch for manual acknowledgements: set it on its paho client
        # before connecting, or messages queued for the session would be acknowledged
        # on arrival, before their events are durable.
        paho_client(client).manual_ack_set(True)
        return client

    async def consume(self) -> None:
        aiomqtt = require("aiomqtt")
        client = self._client(aiomqtt)
        async with client:
            if self.options.protocol == "5":
                subscribe_options = require("paho.mqtt.subscribeoptions")
                for topic in self.options.topic:
                    await client.subscribe(
                        topic,
                        options=subscribe_options.SubscribeOptions(
                            qos=self.options.qos, retainHandling=1
                        ),
                    )
            else:
                await client.subscribe([(t, self.options.qos) for t in self.options.topic])
            self.connected()
            messages = client.messages
            paho = paho_client(client)
            while True:
                batch = [await anext(messages)]
                while len(batch) < self.options.batch and len(messages):
                    batch.append(await anext(messages))
                await self.commit([self._message(m) for m in batch])
                for m in batch:
                    if m.qos:
                        paho.ack(m.mid, m.qos)

    def _message(self, message: Any) -> Message:
        payload = message.payload
        if isinstance(payload, str):
            payload = payload.encode()
        elif not isinstance(payload, bytes | bytearray):
            payload = b"" if payload is None else str(payload).encode()
        headers: dict[str, str] = {}
        content_type = None
        properties = message.properties
        if properties is not None:
            for name, value in getattr(properties, "UserProperty", None) or []:
                headers[str(name)] = str(value)
            content_type = getattr(properties, "ContentType", None)
        extensions: dict[str, ExtensionValue] = {
            "mqttqos": int(message.qos),
            "mqttretain": bool(message.retain),
        }
        return Message(
            payload=bytes(payload),
            subject=str(message.topic.value),
            headers=headers or None,
            content_type=content_type,
            extensions=extensions,
        )


class MqttKind(BrokerKind[MqttOptions]):
    name = "mqtt"
    runs_apart = True
    schemes = ("mqtt", "mqtts", "tcp")
    options_model = MqttOptions
    source_class = MqttSource

    def one_per_cluster(self, options: Mapping[str, Any]) -> bool:
        """One client id and persistent session per trigger: one node connects at a
        time, and the node that takes over resumes the session, with what it holds.
        Shared subscriptions with the default client ids run on every node instead."""
        topics = _as_list(options.get("topic")) or []
        return not (shared([str(t) for t in topics]) and not options.get("client_id"))
