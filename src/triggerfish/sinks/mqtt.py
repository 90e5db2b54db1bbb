"""MQTT sink, with aiomqtt: publish with the broker's ``qos`` (1 by default), which
returns once the broker acknowledged (PUBACK for QoS 1, PUBCOMP for QoS 2). The
events of a batch are published one after the other (see ``_send``).

In MQTT 5 (``protocol: "5"``, the default) raw format sends the data as the payload,
the content type as the Content Type property and each CloudEvents attribute as a user
property of its own name, as the CloudEvents MQTT binding says. MQTT 3.1.1 has no
properties: raw format sends the data alone there (use ``format: cloudevent`` to keep
the attributes).
"""

from __future__ import annotations

from typing import Any

from triggerfish.events.model import Event
from triggerfish.sinks.base import Sink
from triggerfish.sinks.message import Outgoing
from triggerfish.sources.brokers.base import require, safe_name
from triggerfish.sources.brokers.mqtt import connect_client, share_property_tables


class MqttSink(Sink):
    kind = "mqtt"
    _client: Any = None

    async def _connect(self) -> None:
        aiomqtt = require("aiomqtt")
        protocol = aiomqtt.ProtocolVersion
        if self.config.protocol == "5":
            share_property_tables(require("paho.mqtt.properties"), require("paho.mqtt.packettypes"))
        client = connect_client(
            aiomqtt,
            self.url,
            self.config.client_id or f"triggerfish-sink-{safe_name(self.name)}",
            protocol=protocol.V5 if self.config.protocol == "5" else protocol.V311,
        )
        await client.__aenter__()
        self._client = client

    async def _disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.__aexit__(None, None, None)

    def _properties(self, message: Outgoing) -> Any:
        if self.config.protocol != "5":
            return None
        packettypes = require("paho.mqtt.packettypes")
        props = require("paho.mqtt.properties")
        properties = props.Properties(packettypes.PacketTypes.PUBLISH)
        if message.content_type:
            properties.ContentType = message.content_type
        if message.attributes:
            properties.UserProperty = list(message.attributes.items())
        return properties

    async def _send(self, address: str, event: Event, message: Outgoing) -> None:
        # One publish at a time: with several QoS 1 publishes in flight, Mosquitto's
        # acknowledgements wait on TCP's small-packet delays (its set_tcp_nodelay is
        # off by default) and a batch takes longer than one after the other.
        await self._client.publish(
            address,
            message.body,
            qos=self.config.qos,
            retain=self.config.retain,
            properties=self._properties(message),
            timeout=10,
        )
