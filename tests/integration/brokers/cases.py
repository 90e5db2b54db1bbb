"""The cases of the broker-source contract suite: one ``BrokerCase`` per source kind.

Each case knows how to prepare its broker for one test (a stream, a queue, a table,
named after the test so tests never share one), the ``source:`` section of a trigger
reading it, and how to publish messages to it. Capability flags say what a kind can
promise: ``durable`` kinds keep what is published while Triggerfish is down and lose
nothing when it is killed; the others are at most once by nature.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from support.projects import write_project
from support.services import POSTGRES_USER
from triggerfish.node import Node

HOST = "127.0.0.1"
REDIS_URL = f"redis://{HOST}:6379/0"
NATS_URL = f"nats://{HOST}:4222"
AMQP_URL = f"amqp://guest:guest@{HOST}:5672/"
MQTT_URL = f"mqtt://{HOST}:1883"
PG_USER = POSTGRES_USER
PG_URL = f"postgresql://{PG_USER}@{HOST}:5432/test"

RECORDER = """
import json, os

def handler(event, context):
    with open(os.environ["OUT"], "a") as out:
        out.write(json.dumps(event) + "\\n")
    data = event.get("data")
    if isinstance(data, dict) and data.get("fail"):
        raise RuntimeError("failing on purpose")
    return None
"""

#: The same, for triggers with ``batch_size``: the event is a list of events.
BATCH_RECORDER = """
import json, os

def handler(event, context):
    with open(os.environ["OUT"], "a") as out:
        for one in event:
            out.write(json.dumps(one) + "\\n")
"""


class BrokerCase:
    kind: str
    port: int
    what: str
    durable: bool = False

    def __init__(self, name: str) -> None:
        self.name = name

    def source(self) -> dict[str, Any]:
        raise NotImplementedError

    def subject(self) -> str:
        """The subject the events of ``publish`` carry."""
        raise NotImplementedError

    async def setup(self) -> None:
        """Prepare the broker before any source reads it."""

    async def publish(self, payloads: list[bytes]) -> None:
        raise NotImplementedError

    async def teardown(self) -> None:
        """Remove what ``setup`` made."""


class RedisStreamsCase(BrokerCase):
    kind, port, what, durable = "redis", 6379, "Redis", True

    def source(self) -> dict[str, Any]:
        return {"kind": "redis", "url": REDIS_URL, "stream": self.name}

    def subject(self) -> str:
        return self.name

    async def publish(self, payloads: list[bytes]) -> None:
        import redis.asyncio as redis

        client = redis.from_url(REDIS_URL)
        for payload in payloads:
            await client.xadd(self.name, {"data": payload})
        await client.aclose()

    async def teardown(self) -> None:
        import redis.asyncio as redis

        client = redis.from_url(REDIS_URL)
        await client.delete(self.name)
        await client.aclose()


class RedisPubSubCase(BrokerCase):
    kind, port, what = "redis-pubsub", 6379, "Redis"

    def source(self) -> dict[str, Any]:
        return {"kind": "redis-pubsub", "url": REDIS_URL, "channels": self.name}

    def subject(self) -> str:
        return self.name

    async def publish(self, payloads: list[bytes]) -> None:
        import redis.asyncio as redis

        client = redis.from_url(REDIS_URL)
        for payload in payloads:
            await client.publish(self.name, payload)
        await client.aclose()


class NatsCase(BrokerCase):
    kind, port, what = "nats", 4222, "NATS"

    def source(self) -> dict[str, Any]:
        return {"kind": "nats", "url": NATS_URL, "subject": f"{self.name}.*"}

    def subject(self) -> str:
        return f"{self.name}.created"

    async def publish(self, payloads: list[bytes]) -> None:
        import nats

        nc = await nats.connect(NATS_URL)
        for payload in payloads:
            await nc.publish(self.subject(), payload)
        await nc.drain()


class JetStreamCase(BrokerCase):
    kind, port, what, durable = "jetstream", 4222, "NATS", True

    def source(self) -> dict[str, Any]:
        return {"kind": "jetstream", "url": NATS_URL, "stream": self.name, "ack_wait": 5}

    def subject(self) -> str:
        return f"{self.name}.created"

    async def setup(self) -> None:
        import nats

        nc = await nats.connect(NATS_URL)
        await nc.jetstream().add_stream(name=self.name, subjects=[f"{self.name}.>"])
        await nc.close()

    async def publish(self, payloads: list[bytes]) -> None:
        import nats

        nc = await nats.connect(NATS_URL)
        js = nc.jetstream()
        for payload in payloads:
            await js.publish(self.subject(), payload)
        await nc.close()

    async def teardown(self) -> None:
        import nats

        nc = await nats.connect(NATS_URL)
        await nc.jetstream().delete_stream(self.name)
        await nc.close()


class AmqpCase(BrokerCase):
    kind, port, what, durable = "amqp", 5672, "RabbitMQ", True

    def source(self) -> dict[str, Any]:
        return {
            "kind": "amqp",
            "url": AMQP_URL,
            "queue": self.name,
            "exchange": "amq.topic",
            "routing_key": f"{self.name}.#",
        }

    def subject(self) -> str:
        return f"{self.name}.created"

    async def setup(self) -> None:
        import aio_pika

        connection = await aio_pika.connect(AMQP_URL)
        async with connection:
            channel = await connection.channel()
            queue = await channel.declare_queue(self.name, durable=True)
            await queue.bind("amq.topic", routing_key=f"{self.name}.#")

    async def publish(self, payloads: list[bytes]) -> None:
        import aio_pika

        connection = await aio_pika.connect(AMQP_URL)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.get_exchange("amq.topic")
            for payload in payloads:
                message = aio_pika.Message(payload, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
                await exchange.publish(message, routing_key=self.subject())

    async def teardown(self) -> None:
        import aio_pika

        connection = await aio_pika.connect(AMQP_URL)
        async with connection:
            channel = await connection.channel()
            await channel.queue_delete(self.name)


class MqttCase(BrokerCase):
    kind, port, what, durable = "mqtt", 1883, "Mosquitto", True

    def source(self) -> dict[str, Any]:
        return {"kind": "mqtt", "url": MQTT_URL, "topic": f"{self.name}/+/reading", "qos": 1}

    def subject(self) -> str:
        return f"{self.name}/s1/reading"

    async def publish(self, payloads: list[bytes]) -> None:
        import aiomqtt

        async with aiomqtt.Client(HOST, 1883) as client:
            for payload in payloads:
                await client.publish(self.subject(), payload, qos=1)


class PostgresNotifyCase(BrokerCase):
    kind, port, what = "postgres", 5432, "PostgreSQL"

    def source(self) -> dict[str, Any]:
        return {"kind": "postgres", "url": PG_URL, "channel": self.name}

    def subject(self) -> str:
        return self.name

    async def publish(self, payloads: list[bytes]) -> None:
        import asyncpg

        conn = await asyncpg.connect(PG_URL)
        for payload in payloads:
            await conn.execute("SELECT pg_notify($1, $2)", self.name, payload.decode())
        await conn.close()


class PostgresOutboxCase(BrokerCase):
    kind, port, what, durable = "outbox", 5432, "PostgreSQL", True

    def source(self) -> dict[str, Any]:
        return {"kind": "outbox", "url": PG_URL, "table": self.name, "poll_interval": 0.2}

    def subject(self) -> str:
        return self.name

    async def setup(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(PG_URL)
        await conn.execute(
            f'CREATE TABLE "{self.name}" (id bigserial PRIMARY KEY, payload text NOT NULL, '
            "delivered_at timestamptz)"
        )
        await conn.close()

    async def publish(self, payloads: list[bytes]) -> None:
        import asyncpg

        conn = await asyncpg.connect(PG_URL)
        await conn.executemany(
            f'INSERT INTO "{self.name}" (payload) VALUES ($1)', [(p.decode(),) for p in payloads]
        )
        await conn.close()

    async def teardown(self) -> None:
        await drop_table(self.name)


CASES: list[type[BrokerCase]] = [
    RedisStreamsCase,
    RedisPubSubCase,
    NatsCase,
    JetStreamCase,
    AmqpCase,
    MqttCase,
    PostgresNotifyCase,
    PostgresOutboxCase,
]
DURABLE = [case for case in CASES if case.durable]


async def drop_table(name: str) -> None:
    """Drop table ``name`` of the test database, if it is there."""
    import asyncpg

    conn = await asyncpg.connect(PG_URL)
    await conn.execute(f'DROP TABLE IF EXISTS "{name}"')
    await conn.close()


def unique_name(prefix: str = "tf") -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def project(
    root: Path, case: BrokerCase, out: Path, *, function: str = "record", **trigger: Any
) -> Path:
    return write_project(
        root,
        {
            function: (
                RECORDER,
                {
                    "environment": {"OUT": str(out)},
                    "triggers": [{"source": case.source(), **trigger}],
                },
            )
        },
    )


def handled(out: Path) -> list[dict[str, Any]]:
    if not out.exists():
        return []
    return [json.loads(line) for line in out.read_text().splitlines() if line.strip()]


async def eventually(predicate: Callable[[], Any], *, within: float = 30.0, what: str = "") -> Any:
    deadline = time.monotonic() + within
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {within}s waiting for {what}: last={last!r}")


def source_stats(node: Node) -> list[dict[str, Any]]:
    running = node.sources._running.values()
    return [source.stats() for _record, source in running if hasattr(source, "stats")]


async def stats_once(
    node: Node, predicate: Callable[[dict[str, Any]], bool], *, what: str
) -> dict[str, Any]:
    """The first source's counters once ``predicate`` holds of them: the source process
    reports them to the node a moment after they change."""

    def check() -> dict[str, Any] | None:
        stats = source_stats(node)
        return stats[0] if stats and predicate(stats[0]) else None

    found: dict[str, Any] = await eventually(check, what=what)
    return found


async def connected(node: Node) -> bool:
    stats = source_stats(node)
    return bool(stats) and all(s["connected"] for s in stats)


async def deploy_recorder(
    node: Node, tmp_path: Path, source: dict[str, Any], **trigger: Any
) -> Path:
    """Deploy a recorder of what ``source`` brings (``BATCH_RECORDER`` when ``trigger``
    has a ``batch_size``) and wait for the source to connect; the recorder's file."""
    out = tmp_path / "handled.jsonl"
    settings = {"environment": {"OUT": str(out)}, "triggers": [{"source": source, **trigger}]}
    code = BATCH_RECORDER if "batch_size" in trigger else RECORDER
    await node.control.deploy_manifest(
        write_project(tmp_path / "project", {"record": (code, settings)})
    )
    await eventually(lambda: connected(node), what="the source to connect")
    return out
