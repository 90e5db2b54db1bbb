"""RabbitMQ (AMQP 0.9.1) source, with aio-pika: at least once from a durable queue.

The source consumes one queue: declared by Triggerfish (durable, with the ``arguments``
given, such as ``x-dead-letter-exchange``) or, with ``declare: false``, an existing
one. With ``exchange``, the queue is bound to it with each ``routing_key``. Without
``queue``, a server-named exclusive queue is made for the connection: it exists only
while Triggerfish is connected, so that form is at most once.

``prefetch`` bounds the messages in flight. aio-pika connects and declares; the
deliveries are read from its underlying aiormq channel, which costs less per message.
A batch is published to the trigger's topic in one commit, then acknowledged with one
``basic.ack`` (``multiple``); a message whose event is not committed stays
unacknowledged and RabbitMQ delivers it again when the connection ends; a source that
stops lets the batch it is committing finish and acknowledges it (``Overlap``). When
RabbitMQ cancels the consumer (its queue was deleted) the source connects again,
declaring the queue anew unless ``declare: false``.

*Drop* here means a message that cannot become an event (with ``format: cloudevent``,
a body that is not a valid CloudEvent). Retrying it would fail the same way forever,
so it is rejected with ``requeue=False``: RabbitMQ moves it to the queue's own
dead-letter exchange when the queue has one (``x-dead-letter-exchange``), and discards
it otherwise. Failures of the function are Triggerfish's to retry and dead-letter
(the trigger's policy), after the message was acknowledged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, field_validator

from triggerfish.errors import ConfigError
from triggerfish.events.model import ExtensionValue
from triggerfish.sources.brokers.base import (
    BrokerKind,
    BrokerOptions,
    BrokerSource,
    Overlap,
    require,
    take,
)
from triggerfish.sources.brokers.convert import Message

_CLOSED = object()
_CANCELLED = object()


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _header_text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


class AmqpOptions(BrokerOptions):
    queue: str | None = Field(default=None, min_length=1)
    declare: bool = True  # declare the queue (and exchange); false: they must exist
    durable: bool = True
    arguments: dict[str, Any] = Field(default_factory=dict)  # queue arguments
    exchange: str | None = Field(default=None, min_length=1)
    exchange_type: Literal["direct", "topic", "fanout", "headers"] = "topic"
    routing_key: list[str] = Field(default_factory=lambda: ["#"])
    prefetch: int = Field(default=200, ge=1, le=65535)

    _lists = field_validator("routing_key", mode="before")(_as_list)


class AmqpSource(BrokerSource[AmqpOptions]):
    kind = "amqp"
    default_type = "amqp.message"

    def resource(self) -> str:
        return self.options.queue or self.options.exchange or ""

    async def consume(self) -> None:
        aio_pika = require("aio_pika")
        options = self.options
        inbox: asyncio.Queue[Any] = asyncio.Queue()
        connection = await aio_pika.connect(self.url, timeout=10)
        connection.close_callbacks.add(lambda *_args: inbox.put_nowait(_CLOSED))
        try:
            channel = await connection.channel()
            channel.close_callbacks.add(lambda *_args: inbox.put_nowait(_CLOSED))
            await channel.set_qos(prefetch_count=options.prefetch)
            if options.queue is None:
                queue = await channel.declare_queue(exclusive=True, arguments=options.arguments)
            elif options.declare:
                queue = await channel.declare_queue(
                    options.queue, durable=options.durable, arguments=options.arguments or None
                )
            else:
                queue = await channel.declare_queue(options.queue, passive=True)
            if options.exchange:
                exchange = await channel.declare_exchange(
                    options.exchange, options.exchange_type, durable=True,
                    passive=not options.declare,
                )  # fmt: skip
                for key in options.routing_key:
                    await queue.bind(exchange, routing_key=key)
            # Deliveries go straight from aiormq's channel into the inbox: no
            # IncomingMessage and no task of aio-pika's per message.
            raw = await channel.get_underlay_channel()
            raw.on_consumer_cancel_callbacks.add(lambda *_args: inbox.put_nowait(_CANCELLED))
            await raw.basic_consume(queue.name, inbox.put_nowait)
            self.connected()
            # At most half the prefetch window per batch: RabbitMQ goes on delivering
            # the other half while a batch is committed and acknowledged.
            most = min(options.batch, max(1, options.prefetch // 2))
            # One batch at a time; through ``Overlap`` so that a stop lets the batch
            # being committed finish and be acknowledged.
            async with Overlap() as overlap:
                while True:
                    batch = await take(inbox, most)
                    messages = [m for m in batch if m is not _CLOSED and m is not _CANCELLED]
                    if messages:
                        await overlap.submit(self._handle(raw, messages))
                        await overlap.drain()
                    if _CANCELLED in batch:
                        raise ConnectionError(
                            f"RabbitMQ cancelled the consumer of queue {queue.name!r} "
                            "(was the queue deleted?)"
                        )
                    if len(messages) < len(batch):
                        raise ConnectionError("the AMQP connection or channel closed")
        finally:
            if not connection.is_closed:
                await connection.close()

    async def _handle(self, channel: Any, messages: list[Any]) -> None:
        kept = await self.commit([self._message(m) for m in messages])
        if all(kept):
            # One ack for the batch: deliveries on a channel are acked in order.
            await channel.basic_ack(messages[-1].delivery_tag, multiple=True, wait=False)
            return
        for message, ok in zip(messages, kept, strict=True):
            if ok:
                await channel.basic_ack(message.delivery_tag, wait=False)
            else:
                await channel.basic_reject(message.delivery_tag, requeue=False, wait=False)

    def _message(self, message: Any) -> Message:
        properties = message.header.properties
        headers = {str(k): _header_text(v) for k, v in (properties.headers or {}).items()}
        count = headers.get("x-delivery-count")
        delivery = message.delivery
        extensions: dict[str, ExtensionValue] = {"amqpredelivered": bool(delivery.redelivered)}
        if delivery.exchange:
            extensions["amqpexchange"] = delivery.exchange
        return Message(
            payload=message.body,
            subject=delivery.routing_key or "",
            message_id=properties.message_id,
            headers=headers or None,
            content_type=properties.content_type,
            delivery_count=int(count) + 1 if count and count.isdigit() else None,
            extensions=extensions,
        )


class AmqpKind(BrokerKind[AmqpOptions]):
    name = "amqp"
    runs_apart = True
    schemes = ("amqp", "amqps")
    options_model = AmqpOptions
    source_class = AmqpSource

    def one_per_cluster(self, options: Mapping[str, Any]) -> bool:
        """A named queue is shared by the consumers of every node; the queue of one
        connection (no ``queue``) would give each node every message."""
        return not options.get("queue")

    def check(self, options: AmqpOptions, *, where: str) -> None:
        if options.queue is None and options.exchange is None:
            raise ConfigError(f"{where}: give a queue, an exchange to bind to, or both")
