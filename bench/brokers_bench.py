"""Broker sources: Triggerfish beside FastStream, on the same brokers, in one run.

For Redis Streams, NATS JetStream, RabbitMQ and MQTT:

- throughput: N messages (20,000; ``--quick`` 2,000) are published to the broker first,
  then consumed and handled by a no-op handler; messages/s from the consumer's start to
  the last handler start. For Triggerfish, ``ingest/s`` also gives how fast the source
  alone moves messages from the broker into the bus (committed, then acknowledged).
- latency: messages published at 200 per second (5 s), each stamped with its publish
  time; p50/p99 of broker publish -> handler start.

MQTT has no FastStream broker: its peer is the nearest thing, a plain aiomqtt consumer
(QoS 1, acknowledged on arrival) calling the same no-op handler in its event loop. The
MQTT rows run on a Mosquitto of their own (``mosquitto`` on PATH, started on a free
port) set to queue without limit for a persistent session, so that, as for the other
brokers, the backlog waits in the broker before the consumer starts (a default
Mosquitto keeps at most 1,000 messages for a client and drops the rest).

Triggerfish runs in-process (a node with the SQLite bus and process workers): each
message is committed to the bus before the broker's ack, then handled in an isolated
worker process. FastStream consumes the same broker in-process with one worker and a
no-op async handler. Both run on uvloop,
as ``triggerfish up`` and ``faststream run`` do where it is installed.

Both sides are timed the same way: from the consumer's start to the last handler
start. The handler of Triggerfish writes ``<start> <publish time>`` lines to a file,
which the harness reads as it grows (only the new bytes at each poll), so watching a
20,000-line file costs the measured process little; FastStream's handler appends to a
list in the process.

Run: ``python -m bench.brokers_bench [--quick] [--only redis|jetstream|amqp|mqtt]``
(the servers of scripts/services.sh must be running).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench.triggerfish_core import free_port, port_open
from triggerfish.config import Settings
from triggerfish.node import Node

HOST = "127.0.0.1"
RATE = 200.0
LATENCY_SECONDS = 5.0

HANDLER = """
import os, time

OUT = open(os.environ["OUT"], "a", buffering=1)

def handler(event, context):
    OUT.write(f"{time.time()} {event['data']['t']}\\n")
"""


@dataclass
class Figures:
    rate: float | None = None
    ingest: float | None = None  # broker -> bus commits per second (Triggerfish only)
    p50: float | None = None
    p99: float | None = None


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Broker:
    """One broker's publisher, source options for Triggerfish, and its peer (FastStream's
    consumer, or for MQTT a plain aiomqtt one): an object with ``start`` and ``stop``."""

    kind: str
    peer_name = "FastStream"

    def __init__(self) -> None:
        self.name = f"bench{uuid.uuid4().hex[:8]}"

    def source(self) -> dict[str, Any]:
        raise NotImplementedError

    async def setup(self) -> None: ...

    async def teardown(self) -> None: ...

    async def publisher(
        self,
    ) -> tuple[Callable[[bytes], Awaitable[None]], Callable[[], Awaitable[None]]]:
        raise NotImplementedError

    def peer(self, seen: Callable[[dict[str, Any]], None]) -> Any:
        raise NotImplementedError


class RedisBroker(Broker):
    kind = "redis"

    def source(self) -> dict[str, Any]:
        return {"kind": "redis", "url": f"redis://{HOST}:6379/0", "stream": self.name, "batch": 200}

    async def publisher(self) -> Any:
        import redis.asyncio as redis

        client = redis.from_url(f"redis://{HOST}:6379/0")

        async def send(body: bytes) -> None:
            await client.xadd(self.name, {"data": body})

        return send, client.aclose

    async def teardown(self) -> None:
        import redis.asyncio as redis

        client = redis.from_url(f"redis://{HOST}:6379/0")
        await client.delete(self.name)
        await client.aclose()

    def peer(self, seen: Callable[[dict[str, Any]], None]) -> Any:
        from faststream.redis import RedisBroker as FsBroker
        from faststream.redis import StreamSub

        broker = FsBroker(f"redis://{HOST}:6379/0", logger=None)
        stream = StreamSub(self.name, group="fs", consumer="c1", last_id="0")

        @broker.subscriber(stream=stream)
        async def handle(body: dict[str, Any]) -> None:
            seen(body)

        return broker


class JetStreamBroker(Broker):
    kind = "jetstream"

    def source(self) -> dict[str, Any]:
        return {
            "kind": "jetstream",
            "url": f"nats://{HOST}:4222",
            "stream": self.name,
            "batch": 200,
        }

    async def setup(self) -> None:
        import nats

        nc = await nats.connect(f"nats://{HOST}:4222")
        await nc.jetstream().add_stream(name=self.name, subjects=[f"{self.name}.>"])
        await nc.close()

    async def teardown(self) -> None:
        import nats

        nc = await nats.connect(f"nats://{HOST}:4222")
        await nc.jetstream().delete_stream(self.name)
        await nc.close()

    async def publisher(self) -> Any:
        import nats

        nc = await nats.connect(f"nats://{HOST}:4222")
        js = nc.jetstream()

        async def send(body: bytes) -> None:
            await js.publish(f"{self.name}.m", body)

        return send, nc.close

    def peer(self, seen: Callable[[dict[str, Any]], None]) -> Any:
        from faststream.nats import JStream, NatsBroker, PullSub

        broker = NatsBroker(f"nats://{HOST}:4222", logger=None)

        @broker.subscriber(
            f"{self.name}.m", stream=JStream(self.name, declare=False),
            durable=f"{self.name}_fs", pull_sub=PullSub(batch_size=200),
            deliver_policy="all",
        )  # fmt: skip
        async def handle(body: dict[str, Any]) -> None:
            seen(body)

        return broker


class AmqpBroker(Broker):
    kind = "amqp"
    url = f"amqp://guest:guest@{HOST}:5672/"

    def source(self) -> dict[str, Any]:
        return {"kind": "amqp", "url": self.url, "queue": self.name, "prefetch": 200, "batch": 200}

    async def setup(self) -> None:
        import aio_pika

        async with await aio_pika.connect(self.url) as connection:
            channel = await connection.channel()
            await channel.declare_queue(self.name, durable=True)

    async def teardown(self) -> None:
        import aio_pika

        async with await aio_pika.connect(self.url) as connection:
            channel = await connection.channel()
            await channel.queue_delete(self.name)

    async def publisher(self) -> Any:
        import aio_pika

        connection = await aio_pika.connect(self.url)
        channel = await connection.channel(publisher_confirms=False)

        async def send(body: bytes) -> None:
            await channel.default_exchange.publish(
                aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                routing_key=self.name,
            )

        return send, connection.close

    def peer(self, seen: Callable[[dict[str, Any]], None]) -> Any:
        from faststream.rabbit import RabbitBroker, RabbitQueue

        broker = RabbitBroker(self.url, logger=None)

        @broker.subscriber(RabbitQueue(self.name, durable=True))
        async def handle(body: dict[str, Any]) -> None:
            seen(body)

        return broker


class MqttBroker(Broker):
    kind = "mqtt"
    peer_name = "aiomqtt"
    port = 1883  # set by ``private_mosquitto``

    def source(self) -> dict[str, Any]:
        return {"kind": "mqtt", "url": f"mqtt://{HOST}:{self.port}", "topic": f"{self.name}/#",
                "client_id": self.name, "batch": 200}  # fmt: skip

    async def publisher(self) -> Any:
        import aiomqtt

        client = aiomqtt.Client(HOST, self.port, max_queued_outgoing_messages=0)
        await client.__aenter__()

        async def send(body: bytes) -> None:
            await client.publish(f"{self.name}/m", body, qos=1)

        async def close() -> None:
            await client.__aexit__(None, None, None)

        return send, close

    def peer(self, seen: Callable[[dict[str, Any]], None]) -> Any:
        return AiomqttConsumer(self.port, f"{self.name}/#", self.name, seen)


@contextlib.contextmanager
def private_mosquitto() -> Iterator[None]:
    """A Mosquitto of the run's own on a free port, queueing without limit."""
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        conf = Path(tmp) / "mosquitto.conf"
        conf.write_text(
            f"listener {port} {HOST}\nallow_anonymous true\npersistence false\n"
            "max_queued_messages 0\n"
        )
        server = subprocess.Popen(
            ["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            deadline = time.monotonic() + 10
            while not port_open(port):
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the benchmark's own mosquitto did not start")
                time.sleep(0.05)
            MqttBroker.port = port
            yield
        finally:
            server.terminate()
            server.wait(10)


class AiomqttConsumer:
    """A plain aiomqtt consumer of ``topic`` at QoS 1 in a persistent session, handing each
    message's JSON to ``seen`` in its event loop, as FastStream's subscribers do for the
    other brokers. ``subscribe`` alone makes the session, so a backlog waits for it."""

    def __init__(
        self, port: int, topic: str, identifier: str, seen: Callable[[dict[str, Any]], None]
    ) -> None:
        self.port, self.topic, self.identifier, self.seen = port, topic, identifier, seen
        self.client: Any = None
        self.task: asyncio.Task[None] | None = None

    def _client(self) -> Any:
        import aiomqtt

        return aiomqtt.Client(HOST, self.port, identifier=self.identifier, clean_session=False)

    async def subscribe(self) -> None:
        async with self._client() as client:
            await client.subscribe(self.topic, qos=1)

    async def start(self) -> None:
        self.client = self._client()
        await self.client.__aenter__()
        await self.client.subscribe(self.topic, qos=1)
        self.task = asyncio.create_task(self._consume())

    async def _consume(self) -> None:
        async for message in self.client.messages:
            self.seen(json.loads(message.payload))

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        await self.client.__aexit__(None, None, None)


BROKERS: dict[str, type[Broker]] = {
    b.kind: b for b in (RedisBroker, JetStreamBroker, AmqpBroker, MqttBroker)
}


class BenchNode(Node):
    async def stop(self) -> None:
        # Measuring must go on when closing fails; say so rather than stop the run.
        try:
            await super().stop()
        except Exception as exc:
            progress(f"stopping the node failed: {type(exc).__name__}: {exc}")


class Handled:
    """The lines the handler wrote (``<handler start> <publish time>``), read as the
    file grows: polling reads only what was appended since the last poll, so watching
    20,000 lines does not cost the measured process a re-read of the whole file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.starts: list[tuple[float, float]] = []
        self._offset = 0
        self._partial = b""

    def count(self) -> int:
        if not self.path.exists():
            return 0
        with self.path.open("rb") as file:
            file.seek(self._offset)
            chunk = file.read()
        self._offset += len(chunk)
        text = self._partial + chunk
        complete, _, self._partial = text.rpartition(b"\n")
        for line in complete.split(b"\n") if complete else ():
            parts = line.split()
            if len(parts) == 2:
                self.starts.append((float(parts[0]), float(parts[1])))
        return len(self.starts)


async def wait_until(predicate: Callable[[], bool], within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return predicate()


async def publish_at_rate(send: Callable[[bytes], Awaitable[None]], count: int) -> None:
    start = time.monotonic()
    for i in range(count):
        delay = start + i / RATE - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await send(json.dumps({"t": time.time(), "i": i}).encode())


async def sources_connected(node: Node) -> None:
    def running() -> list[Any]:
        return [source for _record, source in node.sources._running.values()]

    for _ in range(600):
        if running() and all(source.stats()["connected"] for source in running()):
            return
        await asyncio.sleep(0.05)
    raise RuntimeError("the broker source did not connect within 30 s")


def write_project(root: Path, broker: Broker, out: Path) -> Path:
    code = root / "noop"
    code.mkdir(parents=True)
    (code / "main.py").write_text(HANDLER)
    trigger = {"source": broker.source(), "start": "earliest"}
    function = {"handler": "main.handler", "code": "./noop", "max_concurrency": 4,
                "environment": {"OUT": str(out)}, "triggers": [trigger]}  # fmt: skip
    manifest = root / "triggerfish.yaml"
    manifest.write_text(yaml.safe_dump({"functions": {"noop": function}}))
    return manifest


async def triggerfish_latency(broker: Broker, work: Path) -> Figures:
    """Messages at 200/s to a node already consuming: publish -> handler start."""
    out = work / "latency.txt"
    manifest = write_project(work / "latency", broker, out)
    send, close = await broker.publisher()
    node = BenchNode(Settings(data_dir=work / "latency-data", shutdown_grace=1.0))
    figures = Figures()
    try:
        await node.start()
        await node.control.deploy_manifest(manifest)
        await sources_connected(node)
        progress(f"{broker.kind}: Triggerfish latency at {RATE:.0f} msg/s")
        total = int(RATE * LATENCY_SECONDS)
        await publish_at_rate(send, total)
        handled = Handled(out)
        await wait_until(lambda: handled.count() >= total, 60)
        latencies = [(started - sent) * 1000 for started, sent in handled.starts]
        if latencies:
            figures.p50 = percentile(latencies, 0.50)
            figures.p99 = percentile(latencies, 0.99)
    finally:
        await node.stop()
        await close()
    return figures


async def triggerfish_throughput(broker: Broker, count: int, work: Path) -> Figures:
    """A backlog of ``count`` messages in the broker, then a node that consumes it."""
    out = work / "throughput.txt"
    manifest = write_project(work / "throughput", broker, out)
    send, close = await broker.publisher()
    progress(f"{broker.kind}: Triggerfish throughput, {count:,} messages")
    node = BenchNode(Settings(data_dir=work / "throughput-data", shutdown_grace=1.0))
    figures = Figures()
    try:
        if broker.kind == "mqtt":
            # MQTT keeps messages only for a session that exists: the source connects once
            # (its session persists), then the backlog, then the node starts again.
            await node.start()
            await node.control.deploy_manifest(manifest)
            await sources_connected(node)
            await node.stop()
            node = BenchNode(Settings(data_dir=work / "throughput-data", shutdown_grace=1.0))
        for i in range(count):
            await send(json.dumps({"t": time.time(), "i": i}).encode())
        began = time.time()
        await node.start()
        if broker.kind != "mqtt":
            await node.control.deploy_manifest(manifest)
        topic = next(
            s.topic for s in node.dispatcher.subscriptions if s.topic.startswith("_source.")
        )
        for _ in range(60_000):  # at most 20 minutes
            if (await node.bus.topic(topic)).count >= count:
                figures.ingest = count / (time.time() - began)
                break
            await asyncio.sleep(0.02)
        handled = Handled(out)
        await wait_until(lambda: handled.count() >= count, 600)
        if handled.starts:
            last = max(started for started, _ in handled.starts)
            figures.rate = len(handled.starts) / max(1e-6, last - began)
    finally:
        await node.stop()
        await close()
    return figures


async def peer(broker: Broker, backlog: Broker, count: int) -> Figures:
    """The same two measures with the broker's peer: ``broker`` for latency, ``backlog``
    (a second stream, queue or topic) for throughput."""
    seen: list[tuple[float, float]] = []
    consumer = broker.peer(lambda body: seen.append((time.time(), float(body["t"]))))
    figures = Figures()
    progress(f"{broker.kind}: {broker.peer_name} latency, then throughput")
    send, close = await broker.publisher()
    try:
        await consumer.start()
        total = int(RATE * LATENCY_SECONDS)
        await publish_at_rate(send, total)
        await wait_until(lambda: len(seen) >= total, 60)
        latencies = [(started - sent) * 1000 for started, sent in seen]
        figures.p50, figures.p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    finally:
        await consumer.stop()
        await close()
    handled: list[tuple[float, float]] = []
    consumer = backlog.peer(lambda body: handled.append((time.time(), float(body["t"]))))
    send, close = await backlog.publisher()
    try:
        if isinstance(consumer, AiomqttConsumer):
            await consumer.subscribe()  # the session the backlog waits in, as for Triggerfish
        for i in range(count):
            await send(json.dumps({"t": time.time(), "i": i}).encode())
        began = time.time()
        await consumer.start()
        await wait_until(lambda: len(handled) >= count, 600)
        if handled:
            figures.rate = len(handled) / max(1e-6, max(s for s, _ in handled) - began)
    finally:
        await consumer.stop()
        await close()
    return figures


def progress(text: str) -> None:
    print(f"  {time.strftime('%H:%M:%S')} {text}", flush=True)


def cell(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


async def run(kinds: list[str], count: int) -> None:
    rows = []
    for kind in kinds:
        brokers = [BROKERS[kind]() for _ in range(4)]
        for broker in brokers:
            await broker.setup()
        try:
            with tempfile.TemporaryDirectory() as tmp:
                ours = await triggerfish_latency(brokers[0], Path(tmp))
                through = await triggerfish_throughput(brokers[1], count, Path(tmp))
                ours.rate, ours.ingest = through.rate, through.ingest
            theirs = await peer(brokers[2], brokers[3], count)
        finally:
            for broker in brokers:
                await broker.teardown()
        rows.append((kind, "Triggerfish", ours))
        rows.append((kind, brokers[2].peer_name, theirs))
    report(rows, count)


def report(rows: list[tuple[str, str, Figures]], count: int) -> None:
    print(f"\n{count:,} messages published then handled; latency at {RATE:.0f} msg/s")
    print(f"{'broker':<11}{'system':<13}{'msg/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'ingest/s':>10}")
    for kind, system, figures in rows:
        print(
            f"{kind:<11}{system:<13}{cell(figures.rate, ',.0f'):>10}"
            f"{cell(figures.p50, '.2f'):>10}{cell(figures.p99, '.2f'):>10}"
            f"{cell(figures.ingest, ',.0f'):>10}"
        )
    print("msg/s: handled per second; ingest/s: broker messages committed to the bus per second")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="2,000 messages")
    parser.add_argument("--only", action="append", choices=sorted(BROKERS))
    args = parser.parse_args()
    import uvloop

    kinds = args.only or list(BROKERS)
    with private_mosquitto() if "mqtt" in kinds else contextlib.nullcontext():
        uvloop.run(run(kinds, 2_000 if args.quick else 20_000))


if __name__ == "__main__":
    main()
