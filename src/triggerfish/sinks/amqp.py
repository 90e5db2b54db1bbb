"""RabbitMQ (AMQP 0.9.1) sink, with aio-pika: publisher confirms, persistent delivery.

Each event is published to the broker's ``exchange`` (the default exchange when
empty, where the routing key is a queue name) with the target's address as routing
key, and the send returns once RabbitMQ confirmed it; a batch is published at once and
its confirms awaited together. With ``mandatory`` (the default)
a message that no queue is bound to take comes back as unroutable and is tried again
later, so an event is not dropped while its queue is missing.

Raw format sends the data as the body with ``content_type``, ``message_id`` (the event
id, for consumers that deduplicate), ``type``, and every CloudEvents attribute as a
``cloudEvents_<name>`` header, as the CloudEvents AMQP binding names them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from triggerfish.sinks.base import Item, Outcome, Sink
from triggerfish.sources.brokers.base import require


class AmqpSink(Sink):
    kind = "amqp"
    _connection: Any = None
    _exchange: Any = None

    async def _connect(self) -> None:
        aio_pika = require("aio_pika")
        config = self.config
        self._connection = await aio_pika.connect(self.url, timeout=10)
        channel = await self._connection.channel(
            publisher_confirms=True, on_return_raises=config.mandatory
        )
        if not config.exchange:
            self._exchange = channel.default_exchange
        elif config.declare:
            self._exchange = await channel.declare_exchange(
                config.exchange, config.exchange_type, durable=True
            )
        else:
            self._exchange = await channel.get_exchange(config.exchange, ensure=True)

    async def _disconnect(self) -> None:
        connection, self._connection, self._exchange = self._connection, None, None
        if connection is not None and not connection.is_closed:
            await connection.close()

    async def _send_batch(self, items: Sequence[Item]) -> list[Outcome]:
        # Every message goes out before the first confirm is awaited; RabbitMQ confirms
        # (or returns) each, on the channel's order.
        aio_pika = require("aio_pika")
        mode = aio_pika.DeliveryMode.PERSISTENT if self.config.persistent else None
        sends = []
        for address, event, message in items:
            headers = {f"cloudEvents_{name}": value for name, value in message.attributes.items()}
            amqp_message = aio_pika.Message(
                message.body,
                headers=headers or None,
                content_type=message.content_type,
                message_id=event.id,
                type=event.type,
                delivery_mode=mode,
            )
            sends.append(
                self._exchange.publish(
                    amqp_message, routing_key=address, mandatory=self.config.mandatory, timeout=10
                )
            )
        confirms = await asyncio.gather(*sends, return_exceptions=True)
        return [_outcome(confirm) for confirm in confirms]


def _outcome(confirm: Any) -> Outcome:
    if isinstance(confirm, Exception):
        return confirm
    if isinstance(confirm, BaseException):  # cancelled
        return RuntimeError(f"the publish was cancelled: {confirm!r}")
    return None
