"""``python -m bench.sink_bench``: how fast each broker sink sends, on its own.

For each broker of ``scripts/services.sh`` that answers (Redis Streams, NATS
JetStream, RabbitMQ, MQTT), a sink made as the node makes it sends batches of the sink
relay's size to one address, over and over for ``--seconds``, and the events it has
confirmed (a completed XADD, a JetStream ack, a publisher confirm, a PUBACK) are counted.
No bus and no relay around it: this is the sink's own rate, the ceiling of the
relay's.

    python -m bench.sink_bench [--seconds 3] [--only mqtt]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from typing import Any

from bench.triggerfish_core import port_open
from triggerfish.events.create import new_event
from triggerfish.functions.brokers import BrokerConfig
from triggerfish.sinks.registry import make_sink
from triggerfish.sinks.relay import BATCH

HOST = "127.0.0.1"


async def prepare_jetstream(name: str) -> Any:
    import nats

    nc = await nats.connect(f"nats://{HOST}:4222")
    await nc.jetstream().add_stream(name=name, subjects=[f"{name}.>"])
    return nc


async def prepare_amqp(url: str, name: str) -> Any:
    """A queue for the default exchange to route ``name`` to (the sink publishes as
    mandatory: without one, RabbitMQ returns every message)."""
    import aio_pika

    connection = await aio_pika.connect(url)
    channel = await connection.channel()
    await channel.declare_queue(name)
    return connection


async def run_one(kind: str, seconds: float) -> float:
    """Events per second the sink of ``kind`` confirmed."""
    name = f"sinkbench{uuid.uuid4().hex[:8]}"
    broker: dict[str, Any]
    cleanup: Any = None
    if kind == "redis":
        broker, address = {"kind": "redis", "url": f"redis://{HOST}:6379/0"}, name
    elif kind == "jetstream":
        broker, address = {"kind": "jetstream", "url": f"nats://{HOST}:4222"}, f"{name}.a"
        cleanup = await prepare_jetstream(name)
    elif kind == "amqp":
        broker = {"kind": "amqp", "url": f"amqp://guest:guest@{HOST}:5672/"}
        address = name
        cleanup = await prepare_amqp(broker["url"], name)
    else:
        broker, address = {"kind": "mqtt", "url": f"mqtt://{HOST}:1883", "qos": 1}, name
    sink = make_sink("bench", BrokerConfig.model_validate(broker))
    events = [new_event(source="bench", type="t", data={"n": n}) for n in range(BATCH)]
    batch = [(address, event) for event in events]
    try:
        await sink.publish_batch(batch)  # connects, and warms up
        sent = 0
        began = time.perf_counter()
        while time.perf_counter() - began < seconds:
            outcomes = await sink.publish_batch(batch)
            failed = [o for o in outcomes if o is not None]
            if failed:
                raise RuntimeError(f"{kind}: {failed[0]}")
            sent += len(outcomes)
        return sent / (time.perf_counter() - began)
    finally:
        await sink.aclose()
        if kind == "redis":
            import redis.asyncio as redis

            client = redis.from_url(broker["url"])
            await client.delete(name)
            await client.aclose()
        if kind == "jetstream":
            await cleanup.jetstream().delete_stream(name)
        if kind == "amqp":
            await (await cleanup.channel()).queue_delete(name)
        if cleanup is not None:
            await cleanup.close()


PORTS = {"redis": 6379, "jetstream": 4222, "amqp": 5672, "mqtt": 1883}


async def main(kinds: list[str], seconds: float) -> None:
    print(f"sink alone, batches of {BATCH} events to one address, {seconds:g} s each")
    for kind in kinds:
        if not port_open(PORTS[kind], HOST):
            print(f"{kind:<10} skipped: nothing answers on {HOST}:{PORTS[kind]}")
            continue
        rate = await run_one(kind, seconds)
        print(f"{kind:<10} {rate:>10,.0f} events/s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--only", action="append", choices=sorted(PORTS))
    options = parser.parse_args()
    asyncio.run(main(options.only or list(PORTS), options.seconds))
