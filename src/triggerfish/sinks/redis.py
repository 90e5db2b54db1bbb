"""Redis sinks: streams (``XADD``, optionally capped with ``MAXLEN``) and pub/sub
(``PUBLISH``).

A stream entry holds the body in ``field`` (``data`` by default), its content type in
``content-type`` and, in raw format, each CloudEvents attribute as a ``ce-<name>``
field; Triggerfish's own Redis source reads such entries back. Pub/sub has no headers:
raw format sends the data alone. A batch goes in one pipeline (one round trip).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from triggerfish.sinks.base import Item, Outcome, Sink
from triggerfish.sinks.message import Outgoing
from triggerfish.sources.brokers.base import require


class _RedisSink(Sink):
    _client: Any = None

    async def _connect(self) -> None:
        redis = require("redis.asyncio")
        self._client = redis.from_url(self.url, socket_connect_timeout=5, socket_timeout=10)
        await self._client.ping()

    async def _disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def _queue(self, pipe: Any, address: str, message: Outgoing) -> None:
        raise NotImplementedError

    async def _send_batch(self, items: Sequence[Item]) -> list[Outcome]:
        # One pipeline (not a transaction): one round trip for the batch, and an
        # answer per command, so an entry the server refuses fails alone.
        pipe = self._client.pipeline(transaction=False)
        for address, _event, message in items:
            self._queue(pipe, address, message)
        replies = await pipe.execute(raise_on_error=False)
        return [reply if isinstance(reply, Exception) else None for reply in replies]


class RedisStreamSink(_RedisSink):
    kind = "redis"

    def _queue(self, pipe: Any, address: str, message: Outgoing) -> None:
        fields: dict[str, Any] = {self.config.field: message.body}
        if message.content_type:
            fields["content-type"] = message.content_type
        for name, value in message.attributes.items():
            fields[f"ce-{name}"] = value
        pipe.xadd(address, fields, maxlen=self.config.maxlen, approximate=self.config.approximate)


class RedisPubSubSink(_RedisSink):
    kind = "redis-pubsub"

    def _queue(self, pipe: Any, address: str, message: Outgoing) -> None:
        pipe.publish(address, message.body)
