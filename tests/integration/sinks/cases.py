"""One ``SinkCase`` per sink kind: the ``brokers:`` entry, the address a function
emits to, how to listen on the broker before the emit, and what arrived there."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import yaml

from integration.brokers.cases import (
    AMQP_URL,
    HOST,
    MQTT_URL,
    NATS_URL,
    PG_URL,
    REDIS_URL,
    drop_table,
)
from support.projects import write_project

EMITTER = """
import json, os

def handler(event, context):
    data = event.get("data") if isinstance(event, dict) else None
    for target in json.loads(os.environ["TARGETS"]):
        context.emit(target, "sensor.hot", {"t": 42, "n": (data or {}).get("n")},
                     subject="s1", extensions={"site": "north"})
    if isinstance(data, dict) and data.get("fail"):
        raise RuntimeError("failing on purpose")
    return {"handled": True}
"""


class Received:
    """A message as a test client got it: body, content type, headers by name."""

    def __init__(self, body: bytes, content_type: str | None, headers: dict[str, str]) -> None:
        self.body = body
        self.content_type = content_type
        self.headers = headers

    def json(self) -> Any:
        return json.loads(self.body)


class SinkCase:
    kind: str
    port: int
    what: str
    headers = True  # the broker carries CloudEvents attributes beside the body
    prefix = "ce-"

    def __init__(self, name: str) -> None:
        self.name = name

    def broker(self) -> dict[str, Any]:
        raise NotImplementedError

    def address(self) -> str:
        return self.name

    async def listen(self) -> None:
        """Start listening (or prepare the stream, queue or table)."""

    async def received(self) -> list[Received]:
        """What arrived so far."""
        raise NotImplementedError

    async def close(self) -> None:
        """Remove what ``listen`` made."""


class RedisStreamSink(SinkCase):
    kind, port, what = "redis", 6379, "Redis"

    def broker(self) -> dict[str, Any]:
        return {"kind": "redis", "url": REDIS_URL, "maxlen": 1000}

    async def received(self) -> list[Received]:
        import redis.asyncio as redis

        client = redis.from_url(REDIS_URL)
        entries = await client.xrange(self.name)
        await client.aclose()
        out = []
        for _id, fields in entries:
            named = {k.decode(): v for k, v in fields.items()}
            body = named.pop("data")
            content_type = named.pop("content-type", b"").decode() or None
            out.append(Received(body, content_type, {k: v.decode() for k, v in named.items()}))
        return out

    async def close(self) -> None:
        import redis.asyncio as redis

        client = redis.from_url(REDIS_URL)
        await client.delete(self.name)
        await client.aclose()


class RedisPubSubSink(SinkCase):
    kind, port, what, headers = "redis-pubsub", 6379, "Redis", False

    def broker(self) -> dict[str, Any]:
        return {"kind": "redis-pubsub", "url": REDIS_URL}

    async def listen(self) -> None:
        import redis.asyncio as redis

        self._client = redis.from_url(REDIS_URL)
        self._pubsub = self._client.pubsub()
        await self._pubsub.subscribe(self.name)
        await self._pubsub.get_message(timeout=1.0)  # the subscription's confirmation
        self._got: list[Received] = []

    async def received(self) -> list[Received]:
        while True:
            message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
            if message is None:
                return self._got
            self._got.append(Received(message["data"], None, {}))

    async def close(self) -> None:
        await self._pubsub.aclose()
        await self._client.aclose()


class NatsSink(SinkCase):
    kind, port, what = "nats", 4222, "NATS"

    def broker(self) -> dict[str, Any]:
        return {"kind": "nats", "url": NATS_URL}

    def address(self) -> str:
        return f"{self.name}.hot"

    async def listen(self) -> None:
        import nats

        self._got: list[Received] = []
        self._nc = await nats.connect(NATS_URL)

        async def got(msg: Any) -> None:
            headers = dict(msg.headers or {})
            self._got.append(Received(msg.data, headers.pop("content-type", None), headers))

        await self._nc.subscribe(f"{self.name}.>", cb=got)
        await self._nc.flush()

    async def received(self) -> list[Received]:
        return self._got

    async def close(self) -> None:
        await self._nc.close()


class JetStreamSink(SinkCase):
    kind, port, what = "jetstream", 4222, "NATS"

    def broker(self) -> dict[str, Any]:
        return {"kind": "jetstream", "url": NATS_URL, "backoff": 0.1, "max_backoff": 0.5}

    def address(self) -> str:
        return f"{self.name}.hot"

    async def listen(self) -> None:
        await self.create_stream()

    async def create_stream(self) -> None:
        import nats

        nc = await nats.connect(NATS_URL)
        await nc.jetstream().add_stream(name=self.name, subjects=[f"{self.name}.>"])
        await nc.close()

    async def received(self) -> list[Received]:
        import nats
        from nats.js.errors import NotFoundError

        nc = await nats.connect(NATS_URL)
        js = nc.jetstream()
        out = []
        try:
            info = await js.stream_info(self.name)
            for seq in range(1, info.state.last_seq + 1):
                msg = await js.get_msg(self.name, seq)
                headers = dict(msg.headers or {})
                out.append(Received(msg.data or b"", headers.pop("content-type", None), headers))
        except NotFoundError:
            pass
        await nc.close()
        return out

    async def close(self) -> None:
        import nats

        nc = await nats.connect(NATS_URL)
        with contextlib.suppress(Exception):
            await nc.jetstream().delete_stream(self.name)
        await nc.close()


class AmqpSink(SinkCase):
    kind, port, what, prefix = "amqp", 5672, "RabbitMQ", "cloudEvents_"

    def broker(self) -> dict[str, Any]:
        return {"kind": "amqp", "url": AMQP_URL, "exchange": "amq.topic"}

    def address(self) -> str:
        return f"{self.name}.hot"

    async def listen(self) -> None:
        import aio_pika

        self._connection = await aio_pika.connect(AMQP_URL)
        channel = await self._connection.channel()
        self._queue = await channel.declare_queue(self.name, durable=True)
        await self._queue.bind("amq.topic", routing_key=f"{self.name}.#")
        self._got: list[Received] = []

    async def received(self) -> list[Received]:
        while True:
            message = await self._queue.get(no_ack=True, fail=False)
            if message is None:
                return self._got
            headers = {k: str(v.decode() if isinstance(v, bytes) else v)
                       for k, v in (message.headers or {}).items()}  # fmt: skip
            headers["message_id"] = message.message_id or ""
            headers["persistent"] = str(message.delivery_mode == 2)
            self._got.append(Received(message.body, message.content_type, headers))

    async def close(self) -> None:
        await self._queue.delete(if_unused=False, if_empty=False)
        await self._connection.close()


class MqttSink(SinkCase):
    kind, port, what, prefix = "mqtt", 1883, "Mosquitto", ""

    def broker(self) -> dict[str, Any]:
        return {"kind": "mqtt", "url": MQTT_URL, "qos": 1}

    def address(self) -> str:
        return f"{self.name}/s1/hot"

    async def listen(self) -> None:
        import aiomqtt

        self._got: list[Received] = []
        self._client = aiomqtt.Client(HOST, 1883, protocol=aiomqtt.ProtocolVersion.V5)
        await self._client.__aenter__()
        await self._client.subscribe(f"{self.name}/#", qos=1)
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self._client.messages:
            props = message.properties
            headers = dict(getattr(props, "UserProperty", []) or [])
            content_type = getattr(props, "ContentType", None)
            self._got.append(Received(bytes(message.payload), content_type, headers))

    async def received(self) -> list[Received]:
        return self._got

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(BaseException):
            await self._task
        await self._client.__aexit__(None, None, None)


class PostgresNotifySink(SinkCase):
    kind, port, what, headers = "postgres", 5432, "PostgreSQL", False

    def broker(self) -> dict[str, Any]:
        return {"kind": "postgres", "url": PG_URL}

    async def listen(self) -> None:
        import asyncpg

        self._got: list[Received] = []
        self._conn = await asyncpg.connect(PG_URL)

        def got(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
            self._got.append(Received(payload.encode(), None, {}))

        await self._conn.add_listener(self.name, got)

    async def received(self) -> list[Received]:
        return self._got

    async def close(self) -> None:
        await self._conn.close()


class PostgresOutboxSink(SinkCase):
    kind, port, what, prefix = "outbox", 5432, "PostgreSQL", ""

    def broker(self) -> dict[str, Any]:
        return {
            "kind": "outbox",
            "url": PG_URL,
            "headers_column": "headers",
            "id_column": "event_id",
        }

    async def listen(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(PG_URL)
        await conn.execute(
            f'CREATE TABLE "{self.name}" (id bigserial PRIMARY KEY, payload text NOT NULL, '
            "headers jsonb, event_id text UNIQUE, delivered_at timestamptz)"
        )
        await conn.close()

    async def received(self) -> list[Received]:
        import asyncpg

        conn = await asyncpg.connect(PG_URL)
        rows = await conn.fetch(f'SELECT payload, headers FROM "{self.name}" ORDER BY id')
        await conn.close()
        out = []
        for row in rows:
            headers = json.loads(row["headers"])
            out.append(Received(row["payload"].encode(), headers.pop("content-type", None),
                                headers))  # fmt: skip
        return out

    async def close(self) -> None:
        await drop_table(self.name)


CASES: list[type[SinkCase]] = [
    RedisStreamSink,
    RedisPubSubSink,
    NatsSink,
    JetStreamSink,
    AmqpSink,
    MqttSink,
    PostgresNotifySink,
    PostgresOutboxSink,
]


def emitter_project(
    root: Path,
    *,
    topic: str,
    targets: list[str],
    brokers: dict[str, Any],
    destinations: dict[str, str] | None = None,
    retry: dict[str, Any] | None = None,
) -> Path:
    trigger: dict[str, Any] = {"topic": topic}
    if retry:
        trigger["retry"] = retry
    settings: dict[str, Any] = {
        "environment": {"TARGETS": json.dumps(targets)},
        "triggers": [trigger],
    }
    if destinations:
        settings["destinations"] = destinations
    path = write_project(root, {"emitter": (EMITTER, settings)}, topics={topic: {}})
    manifest = yaml.safe_load(path.read_text())
    manifest["brokers"] = brokers
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return path
