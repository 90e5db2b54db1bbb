"""NATS sources: core subjects (at most once) and JetStream durable consumers (at least
once).

``nats`` subscribes to subjects, wildcards included (``orders.*`` one token,
``sensors.>`` the rest), in a queue group (by default one per trigger, so several
Triggerfish nodes share the messages instead of each taking all). Core NATS keeps
nothing: a message published while no node is subscribed, or in flight when one
stops, is lost. At most once by nature.

``jetstream`` reads a stream through a durable pull consumer with explicit acks, with
pull requests on a private inbox (``pull.py``): the messages of a request arrive
together, and the next request goes out while they are committed. A batch is
published to the trigger's topic in one commit, then each message is acked; a message
not acked within ``ack_wait`` seconds (Triggerfish was killed) is delivered
again, and the consumer, kept by the server under its durable name, resumes where it
stopped after a restart. The event id is ``<stream>-<stream sequence>``, so a message
delivered twice is stored once. The stream itself must exist (it is the user's).
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import Field, field_validator

from triggerfish.nats_client import connect
from triggerfish.sources.brokers.base import (
    BrokerKind,
    BrokerOptions,
    BrokerSource,
    Overlap,
    require,
    safe_name,
    take,
)
from triggerfish.sources.brokers.convert import Message
from triggerfish.sources.brokers.pull import ACK, TERM, Puller, ack_metadata

SCHEMES = ("nats", "tls", "ws", "wss")
_CLOSED = object()


def _headers(msg: Any) -> tuple[dict[str, str] | None, str | None]:
    headers = dict(msg.headers or {})
    content_type = headers.pop("Content-Type", None) or headers.pop("content-type", None)
    return headers or None, content_type


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class NatsOptions(BrokerOptions):
    subject: list[str] = Field(min_length=1)  # one subject or a list; wildcards allowed
    queue: str | None = Field(default=None, min_length=1)  # default: one per trigger

    _lists = field_validator("subject", mode="before")(_as_list)


class NatsSource(BrokerSource[NatsOptions]):
    kind = "nats"
    default_type = "nats.message"

    async def consume(self) -> None:
        require("nats")
        inbox: asyncio.Queue[Any] = asyncio.Queue()

        async def closed() -> None:
            inbox.put_nowait(_CLOSED)

        async def received(msg: Any) -> None:
            inbox.put_nowait(msg)

        nc = await connect(
            self.url, allow_reconnect=False, connect_timeout=5, closed_cb=closed,
            error_cb=self._error,
        )  # fmt: skip
        try:
            default = safe_name(f"triggerfish.{self.context.trigger_id}", extra=".")
            queue = self.options.queue or default
            for subject in self.options.subject:
                await nc.subscribe(subject, queue=queue, cb=received)
            await nc.flush()
            self.connected()
            while True:
                batch = await take(inbox, self.options.batch)
                messages = [m for m in batch if m is not _CLOSED]
                if messages:
                    await self.commit([self._message(m) for m in messages])
                if len(messages) < len(batch):
                    raise ConnectionError("the NATS connection closed")
        finally:
            if not nc.is_closed:
                await nc.close()

    async def _error(self, exc: Exception) -> None:
        self._stats.last_error = f"{type(exc).__name__}: {exc}"

    def _message(self, msg: Any) -> Message:
        headers, content_type = _headers(msg)
        return Message(
            payload=msg.data,
            subject=msg.subject,
            message_id=(headers or {}).get("Nats-Msg-Id"),
            headers=headers,
            content_type=content_type,
        )


class NatsKind(BrokerKind[NatsOptions]):
    name = "nats"
    schemes = SCHEMES
    options_model = NatsOptions
    source_class = NatsSource


class JetStreamOptions(BrokerOptions):
    stream: str = Field(min_length=1)
    subject: str | None = Field(default=None, min_length=1)  # a filter within the stream
    durable: str | None = Field(default=None, min_length=1)  # default: one per trigger
    ack_wait: float = Field(default=60.0, gt=0)  # seconds before an unacked message returns
    fetch_wait: float = Field(default=1.0, gt=0, le=60)


class JetStreamSource(BrokerSource[JetStreamOptions]):
    kind = "jetstream"
    default_type = "nats.jetstream.message"

    def resource(self) -> str:
        return self.options.stream

    @property
    def durable(self) -> str:
        return self.options.durable or safe_name(f"triggerfish_{self.context.trigger_id}")

    async def consume(self) -> None:
        require("nats")
        api = require("nats.js.api")
        js_errors = require("nats.js.errors")
        puller = Puller(
            f"$JS.API.CONSUMER.MSG.NEXT.{self.options.stream}.{self.durable}",
            batch=self.options.batch,
            expires=self.options.fetch_wait,
        )
        nc = await connect(
            self.url, allow_reconnect=False, connect_timeout=5, error_cb=self._error,
            closed_cb=puller.closed,
        )  # fmt: skip
        try:
            js = nc.jetstream()
            try:
                await js.consumer_info(self.options.stream, self.durable)
            except js_errors.NotFoundError:
                earliest = self.context.config.get("start") == "earliest"
                await js.add_consumer(
                    self.options.stream,
                    api.ConsumerConfig(
                        durable_name=self.durable,
                        filter_subject=self.options.subject,
                        ack_policy=api.AckPolicy.EXPLICIT,
                        deliver_policy=api.DeliverPolicy.ALL if earliest else api.DeliverPolicy.NEW,
                        ack_wait=self.options.ack_wait,
                        max_ack_pending=max(1000, self.options.batch * 4),
                    ),
                )
            await puller.start(nc)
            self.connected()
            async with Overlap() as overlap:
                while True:
                    # Messages keep arriving while the batch before is being committed.
                    batch = await puller.take()
                    await overlap.submit(self._handle(nc, batch))
        finally:
            if not nc.is_closed:
                await nc.close()

    async def _handle(self, nc: Any, batch: list[Any]) -> None:
        kept = await self.commit([self._message(m) for m in batch])
        for msg, ok in zip(batch, kept, strict=True):
            await nc.publish(msg.reply, ACK if ok else TERM)

    async def _error(self, exc: Exception) -> None:
        self._stats.last_error = f"{type(exc).__name__}: {exc}"

    def _message(self, msg: Any) -> Message:
        headers, content_type = _headers(msg)
        stream, sequence, delivered = ack_metadata(msg.reply)
        return Message(
            payload=msg.data,
            subject=msg.subject,
            stable_id=f"{stream}-{sequence}",
            message_id=(headers or {}).get("Nats-Msg-Id") or sequence,
            headers=headers,
            content_type=content_type,
            delivery_count=delivered,
            extensions={"natsstream": stream},
        )


class JetStreamKind(BrokerKind[JetStreamOptions]):
    name = "jetstream"
    schemes = SCHEMES
    options_model = JetStreamOptions
    source_class = JetStreamSource
