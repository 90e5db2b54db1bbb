"""MQTT sink, with Triggerfish's MQTT client (``sources/brokers/mqtt/client.py``):
publish with the broker's ``qos`` (1 by default), which returns once the broker
acknowledged (PUBACK for QoS 1, PUBCOMP for QoS 2). The events of a batch are
published together, up to the broker's Receive Maximum at once, and their
acknowledgements awaited together (the client acknowledges the broker's TCP segments at
once while it waits, see ``MqttClient.data_received``); an event the broker refuses
for good is rejected, one it refuses for now is sent again later by the relay, while
the others of its batch go out.

In MQTT 5 (``protocol: "5"``, the default) raw format sends the data as the payload,
the content type as the Content Type property and each CloudEvents attribute as a user
property of its own name, as the CloudEvents MQTT binding says. MQTT 3.1.1 has no
properties: raw format sends the data alone there (use ``format: cloudevent`` to keep
the attributes).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from triggerfish.events.model import Event
from triggerfish.sinks.base import Item, Outcome, Sink, SinkRejectedError
from triggerfish.sinks.message import Outgoing
from triggerfish.sources.brokers.base import safe_name
from triggerfish.sources.brokers.mqtt import wire
from triggerfish.sources.brokers.mqtt.client import MqttClient, PublishRefused, address_of

#: Publishes of one batch awaiting their acknowledgement at once, at most.
MAX_IN_FLIGHT = 100


class MqttSink(Sink):
    kind = "mqtt"
    _client: MqttClient | None = None

    async def _connect(self) -> None:
        self._client = MqttClient(
            address_of(self.url),
            self.config.client_id or f"triggerfish-sink-{safe_name(self.name)}",
            protocol=wire.V5 if self.config.protocol == "5" else wire.V311,
            clean_start=True,  # a publish that failed is sent again by the relay
        )
        await self._client.connect()

    async def _disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    def _properties(self, message: Outgoing) -> dict[str, Any] | None:
        if self.config.protocol != "5":
            return None
        properties: dict[str, Any] = {}
        if message.content_type:
            properties["content_type"] = message.content_type
        if message.attributes:
            properties["user_property"] = list(message.attributes.items())
        return properties

    async def _send_batch(self, items: Sequence[Item]) -> list[Outcome]:
        assert self._client is not None, "the sink connects before it sends"
        outcomes: list[Outcome] = []
        step = max(1, min(self._client.send_maximum, MAX_IN_FLIGHT))
        for start in range(0, len(items), step):
            chunk = items[start : start + step]
            # Each publish writes its packet before it first waits: they go out in order.
            results = await asyncio.gather(
                *(self._send(address, event, message) for address, event, message in chunk),
                return_exceptions=True,
            )
            broken = False
            for result in results:
                if isinstance(result, BaseException) and not isinstance(result, Exception):
                    raise result  # cancelled
                outcomes.append(result)
                broken = broken or (
                    isinstance(result, Exception) and not isinstance(result, SinkRejectedError)
                )
            if broken:
                break  # the rest is sent again later, with the failed ones
        return outcomes

    async def _send(self, address: str, event: Event, message: Outgoing) -> None:
        assert self._client is not None, "the sink connects before it sends"
        try:
            await self._client.publish(
                address,
                message.body,
                qos=self.config.qos,
                retain=self.config.retain,
                properties=self._properties(message),
            )
        except PublishRefused as exc:
            if exc.code in PublishRefused.FINAL:
                raise SinkRejectedError(str(exc)) from exc
            raise
