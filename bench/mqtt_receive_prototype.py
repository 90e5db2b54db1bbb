"""A measured prototype: how fast Python can take MQTT 5 messages off a socket when it
reads packets in batches, beside aiomqtt (paho) on the same backlog.

The MQTT source is the limit of its row in ``bench.brokers_bench``: nearly all of its
time is paho's per-packet Python. This prototype is the receiving half of an MQTT 5
client written for batches: an asyncio protocol that parses every complete PUBLISH in
what one read returned, hands them on as one list and answers them with one write of
PUBACKs. It is not a client Triggerfish uses (no reconnects, no QoS 2, no TLS); it
measures what such a client would give.

Both consume a backlog of ``--messages`` QoS 1 messages that waits in a Mosquitto of
the run's own (``bench.brokers_bench.private_mosquitto``) for their persistent session,
and both call the same handler per message (decode the JSON payload, keep it). Rounds
alternate; the figure is messages/s from the connect to the last message, and the CPU
time of this process per message.

    python -m bench.mqtt_receive_prototype [--messages 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import struct
import time
import uuid
from collections.abc import Callable
from typing import Any

from bench.brokers_bench import (
    HOST,
    AiomqttConsumer,
    MqttBroker,
    private_mosquitto,
    wait_until,
)

SESSION_EXPIRY = 0x11
RECEIVE_MAXIMUM = 0x21


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def text(value: str) -> bytes:
    raw = value.encode()
    return struct.pack("!H", len(raw)) + raw


def packet(kind: int, body: bytes) -> bytes:
    return bytes([kind]) + varint(len(body)) + body


def connect_packet(client_id: str, receive_maximum: int) -> bytes:
    properties = struct.pack("!BIBH", SESSION_EXPIRY, 3600, RECEIVE_MAXIMUM, receive_maximum)
    # protocol name and level 5, flags: clean start off; keep alive 60 s
    head = text("MQTT") + bytes([5, 0x00]) + struct.pack("!H", 60)
    return packet(0x10, head + varint(len(properties)) + properties + text(client_id))


def subscribe_packet(topic: str) -> bytes:
    return packet(0x82, struct.pack("!H", 1) + varint(0) + text(topic) + bytes([0x01]))


def read_varint(view: memoryview, cursor: int, end: int) -> tuple[int, int] | None:
    """The variable byte integer at ``cursor`` and where it ends; None when ``end``
    comes first."""
    value, shift = 0, 0
    while cursor < end:
        byte = view[cursor]
        cursor += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, cursor
    return None


class BatchReceiver(asyncio.Protocol):
    """Parses the PUBLISH packets of each read in one pass; ``deliver`` gets them as a
    list of (topic, payload), then one write acknowledges them all."""

    def __init__(self, deliver: Callable[[list[tuple[str, bytes]]], None]) -> None:
        self.deliver = deliver
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.connected = asyncio.get_running_loop().create_future()
        self.subscribed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        view = memoryview(buffer)
        at, end = 0, len(buffer)
        batch: list[tuple[str, bytes]] = []
        acks = bytearray()
        while at + 2 <= end:
            kind = view[at]
            remaining = read_varint(view, at + 1, end)
            if remaining is None or remaining[1] + remaining[0] > end:
                break  # the packet is not complete yet
            length, body = remaining
            at = body + length
            if kind >> 4 == 3:  # PUBLISH
                qos = (kind >> 1) & 3
                size = (view[body] << 8) | view[body + 1]
                topic = bytes(view[body + 2 : body + 2 + size]).decode()
                cursor = body + 2 + size
                if qos:
                    acks += b"\x40\x02" + view[cursor : cursor + 2]
                    cursor += 2
                properties = read_varint(view, cursor, at)
                if properties is None:
                    raise ValueError("a PUBLISH whose properties run past its end")
                props, cursor = properties
                batch.append((topic, bytes(view[cursor + props : at])))
            elif kind == 0x20:
                self.connected.set_result(bytes(view[body:at]))
            elif kind == 0x90:
                self.subscribed.set_result(bytes(view[body:at]))
        view.release()
        del buffer[:at]
        if batch:
            self.deliver(batch)
        if acks and self.transport is not None:
            self.transport.write(bytes(acks))


async def prototype_session(port: int, client_id: str, topic: str, deliver: Any) -> Any:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_connection(lambda: BatchReceiver(deliver), HOST, port)
    transport.write(connect_packet(client_id, 400))
    await protocol.connected
    transport.write(subscribe_packet(topic))
    await protocol.subscribed
    return transport


async def backlog(broker: MqttBroker, count: int) -> None:
    send, close = await broker.publisher()
    try:
        for i in range(count):
            await send(json.dumps({"t": time.time(), "i": i}).encode())
    finally:
        await close()


async def round_prototype(count: int) -> tuple[float, float]:
    broker = MqttBroker()
    seen: list[Any] = []

    def deliver(batch: list[tuple[str, bytes]]) -> None:
        for _topic, payload in batch:
            seen.append(json.loads(payload))

    client_id = f"proto-{uuid.uuid4().hex[:8]}"
    first = await prototype_session(broker.port, client_id, f"{broker.name}/#", deliver)
    first.close()  # the session stays, and keeps the backlog for the next connection
    await backlog(broker, count)
    cpu, began = time.process_time(), time.monotonic()
    transport = await prototype_session(broker.port, client_id, f"{broker.name}/#", deliver)
    await wait_until(lambda: len(seen) >= count, 300)
    took, used = time.monotonic() - began, time.process_time() - cpu
    transport.close()
    check(seen, count, "prototype")
    return len(seen) / took, used / max(1, len(seen)) * 1e6


async def round_aiomqtt(count: int) -> tuple[float, float]:
    broker = MqttBroker()
    seen: list[Any] = []
    consumer = broker.peer(seen.append)
    assert isinstance(consumer, AiomqttConsumer)
    await consumer.subscribe()
    await backlog(broker, count)
    cpu, began = time.process_time(), time.monotonic()
    await consumer.start()
    await wait_until(lambda: len(seen) >= count, 300)
    took, used = time.monotonic() - began, time.process_time() - cpu
    await consumer.stop()
    check(seen, count, "aiomqtt")
    return len(seen) / took, used / max(1, len(seen)) * 1e6


def check(seen: list[Any], count: int, who: str) -> None:
    """Every message of the backlog arrived, once."""
    numbers = sorted(message["i"] for message in seen)
    if numbers != list(range(count)):
        raise SystemExit(f"{who}: {len(seen)} messages, not each of the {count} once")


async def run(count: int, rounds: int) -> None:
    results: dict[str, list[tuple[float, float]]] = {"aiomqtt": [], "prototype": []}
    for number in range(rounds):
        results["aiomqtt"].append(await round_aiomqtt(count))
        results["prototype"].append(await round_prototype(count))
        print(
            f"round {number + 1}: aiomqtt {results['aiomqtt'][-1][0]:,.0f} msg/s, "
            f"prototype {results['prototype'][-1][0]:,.0f} msg/s",
            flush=True,
        )
    print(f"\n{count:,} QoS 1 messages waiting, then received (median of {rounds} rounds)")
    print(f"{'receiver':<12}{'msg/s':>10}{'cpu us/msg':>12}  rounds (msg/s)")
    for name, rows in results.items():
        rate = statistics.median(r for r, _ in rows)
        cpu = statistics.median(c for _, c in rows)
        each = ", ".join(f"{r:,.0f}" for r, _ in rows)
        print(f"{name:<12}{rate:>10,.0f}{cpu:>12.1f}  {each}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import uvloop

    with private_mosquitto():
        uvloop.run(run(args.messages, args.rounds))


if __name__ == "__main__":
    main()
