"""Redis sources: Streams with consumer groups (at least once) and Pub/Sub (at most once).

``redis`` reads a stream through a consumer group (``XREADGROUP``). A batch of entries
is published to the trigger's topic in one commit, then acknowledged (``XACK``); the
next batch is read while one is being committed. On each connection the consumer
first reads back its own pending entries (delivered before a crash, never
acknowledged), and every few seconds it claims (``XAUTOCLAIM``)
entries that another consumer of the group left pending for longer than
``claim_idle`` seconds: a node that died loses nothing. The event id is the entry id,
so an entry delivered twice is stored once.

``redis-pubsub`` subscribes to channels and glob patterns. Redis keeps nothing for a
subscriber: what is published while Triggerfish is not connected is lost, and a
message in flight when it stops is lost too. At most once by nature.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Mapping
from typing import Any

import orjson
from pydantic import Field, field_validator

from triggerfish.errors import ConfigError
from triggerfish.events.model import ExtensionValue
from triggerfish.ids import node_tag
from triggerfish.sources.brokers.base import (
    BrokerKind,
    BrokerOptions,
    BrokerSource,
    Overlap,
    require,
)
from triggerfish.sources.brokers.convert import Message

SCHEMES = ("redis", "rediss", "unix")


def _driver() -> Any:
    return require("redis.asyncio")


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class RedisStreamsOptions(BrokerOptions):
    stream: str = Field(min_length=1)
    group: str | None = Field(default=None, min_length=1)  # default: triggerfish.<trigger>
    consumer: str | None = Field(default=None, min_length=1)  # default: host name and node
    field: str = Field(default="data", min_length=1)  # the entry field holding the payload
    claim_idle: float = Field(default=60.0, gt=0)  # seconds before another's entry is claimed
    block: float = Field(default=1.0, gt=0, le=60)  # seconds one read waits for entries


class RedisStreamsSource(BrokerSource[RedisStreamsOptions]):
    kind = "redis"
    default_type = "redis.stream.message"

    def resource(self) -> str:
        return self.options.stream

    @property
    def group(self) -> str:
        return self.options.group or f"triggerfish.{self.context.trigger_id}"

    @property
    def consumer(self) -> str:
        """The host name and a digest of the node's data directory: stable across
        restarts of a node (so it reads back its own pending entries), distinct for
        the nodes of a cluster, even on one machine."""
        if self.options.consumer:
            return self.options.consumer
        return f"{socket.gethostname()}-{node_tag(self.context.data_dir)}"

    async def consume(self) -> None:
        redis = _driver()
        client = redis.from_url(self.url)
        try:
            await client.ping()
            start = "0" if self.context.config.get("start") == "earliest" else "$"
            try:
                await client.xgroup_create(self.options.stream, self.group, id=start, mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
            self.connected()
            await self._own_pending(client)
            next_claim = 0.0
            async with Overlap() as overlap:
                while True:
                    if time.monotonic() >= next_claim:
                        await overlap.drain()
                        await self._claim(client)
                        next_claim = time.monotonic() + min(self.options.claim_idle, 10.0)
                    # The next read goes out while the batch before is being committed.
                    reply = await client.xreadgroup(
                        self.group,
                        self.consumer,
                        {self.options.stream: ">"},
                        count=self.options.batch,
                        block=int(self.options.block * 1000),
                    )
                    for _stream, entries in reply or []:
                        await overlap.submit(self._handle(client, entries, redelivered=False))
        finally:
            await client.aclose()

    async def _own_pending(self, client: Any) -> None:
        """Entries this consumer took before and never acknowledged (a crash)."""
        after = "0"
        while True:
            reply = await client.xreadgroup(
                self.group, self.consumer, {self.options.stream: after}, count=self.options.batch
            )
            entries = reply[0][1] if reply else []
            if not entries:
                return
            after = _text(entries[-1][0])
            await self._handle(client, entries, redelivered=True)

    async def _claim(self, client: Any) -> None:
        """Take over entries another consumer left pending past ``claim_idle``."""
        cursor = "0-0"
        for _ in range(100):
            reply = await client.xautoclaim(
                self.options.stream,
                self.group,
                self.consumer,
                min_idle_time=int(self.options.claim_idle * 1000),
                start_id=cursor,
                count=self.options.batch,
            )
            cursor = _text(reply[0])
            if reply[1]:
                await self._handle(client, reply[1], redelivered=True)
            if cursor == "0-0":
                return

    async def _handle(self, client: Any, entries: list[Any], *, redelivered: bool) -> None:
        live = [(_text(i), fields) for i, fields in entries if fields]
        ids = [_text(i) for i, _fields in entries]
        counts: dict[str, int] = {}
        if redelivered and live:
            pending = await client.xpending_range(
                self.options.stream, self.group, min=live[0][0], max=live[-1][0],
                count=len(entries),
            )  # fmt: skip
            counts = {_text(p["message_id"]): int(p["times_delivered"]) for p in pending}
        messages = [self._message(i, fields, counts.get(i, 1)) for i, fields in live]
        if messages:
            await self.commit(messages)
        # Dropped entries are acknowledged too: they can never become events.
        await client.xack(self.options.stream, self.group, *ids)

    def _message(self, entry_id: str, fields: dict[Any, Any], count: int) -> Message:
        named = {_text(k): v for k, v in fields.items()}
        if self.options.field in named:
            raw = named.pop(self.options.field)
            payload = raw if isinstance(raw, bytes) else str(raw).encode()
            headers = {k: _text(v) for k, v in named.items()}
        else:
            payload = orjson.dumps({k: _text(v) for k, v in named.items()})
            headers = {}
        content_type = headers.pop("content-type", None) or headers.pop("contenttype", None)
        return Message(
            payload=payload,
            subject=self.options.stream,
            stable_id=entry_id,
            message_id=entry_id,
            headers=headers or None,
            content_type=content_type,
            delivery_count=count,
        )


class RedisStreamsKind(BrokerKind[RedisStreamsOptions]):
    name = "redis"
    schemes = SCHEMES
    options_model = RedisStreamsOptions
    source_class = RedisStreamsSource


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class RedisPubSubOptions(BrokerOptions):
    channels: list[str] = Field(default_factory=list)
    patterns: list[str] = Field(default_factory=list)  # glob patterns (PSUBSCRIBE)

    _lists = field_validator("channels", "patterns", mode="before")(_as_list)


class RedisPubSubSource(BrokerSource[RedisPubSubOptions]):
    kind = "redis-pubsub"
    default_type = "redis.pubsub.message"

    async def consume(self) -> None:
        redis = _driver()
        client = redis.from_url(self.url)
        pubsub = client.pubsub()
        try:
            if self.options.channels:
                await pubsub.subscribe(*self.options.channels)
            if self.options.patterns:
                await pubsub.psubscribe(*self.options.patterns)
            self.connected()
            while True:
                first = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if first is None:
                    continue
                batch = [first]
                while len(batch) < self.options.batch:
                    more = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.0)
                    if more is None:
                        break
                    batch.append(more)
                await self.commit([self._message(m) for m in batch])
        finally:
            await pubsub.aclose()
            await client.aclose()

    def _message(self, raw: dict[str, Any]) -> Message:
        data = raw["data"]
        extensions: dict[str, ExtensionValue] = {}
        if raw.get("pattern"):
            extensions["redispattern"] = _text(raw["pattern"])
        return Message(
            payload=data if isinstance(data, bytes) else str(data).encode(),
            subject=_text(raw["channel"]),
            extensions=extensions,
        )


class RedisPubSubKind(BrokerKind[RedisPubSubOptions]):
    name = "redis-pubsub"
    schemes = SCHEMES
    options_model = RedisPubSubOptions
    source_class = RedisPubSubSource

    def one_per_cluster(self, options: Mapping[str, Any]) -> bool:
        """Every subscriber gets each message: one node subscribes."""
        return True

    def check(self, options: RedisPubSubOptions, *, where: str) -> None:
        if not options.channels and not options.patterns:
            raise ConfigError(f"{where}: give channels, patterns, or both")
