"""Triggerfish's MQTT client (``sources/brokers/mqtt/client.py``) against Mosquitto, with
aiomqtt as the other side: what arrives, what comes again when it was not
acknowledged, what the broker refuses and why, TLS, keep alive and flow. The few
behaviours no real broker shows on demand (a broken packet, a broker gone silent, a
QoS 2 message sent again after its PUBREC) are played by a scripted server."""

from __future__ import annotations

import asyncio
import ssl
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from support.mosquitto import HOST, mosquitto, password_file, self_signed
from support.services import require_port
from triggerfish.errors import AdapterError
from triggerfish.events.create import new_event
from triggerfish.functions.brokers import BrokerConfig
from triggerfish.sinks.base import SinkRejectedError
from triggerfish.sinks.registry import make_sink
from triggerfish.sources.brokers.mqtt import wire
from triggerfish.sources.brokers.mqtt.client import (
    Address,
    MqttClient,
    PublishRefused,
    Session,
    address_of,
)
from triggerfish.sources.brokers.mqtt.wire import V5, V311, Publish

aiomqtt = pytest.importorskip("aiomqtt")

PROTOCOLS = pytest.mark.parametrize("protocol", [V5, V311], ids=["mqtt5", "mqtt311"])


@pytest.fixture
def shared_broker() -> Address:
    require_port(HOST, 1883, "Mosquitto")
    return Address(HOST, 1883, False, None, None)


@pytest.fixture
def name() -> str:
    return f"tf-client-{uuid.uuid4().hex[:10]}"


def client_of(address: Address, client_id: str, protocol: int = V5, **options: Any) -> MqttClient:
    options.setdefault("session_expiry", 60)
    return MqttClient(address, client_id, protocol=protocol, timeout=5, **options)


async def publish(port: int, topic: str, messages: list[tuple[bytes, int]], **kw: Any) -> None:
    """Publish with aiomqtt (MQTT 5), waiting for each QoS 1/2 acknowledgement."""
    async with aiomqtt.Client(HOST, port, protocol=aiomqtt.ProtocolVersion.V5) as sender:
        for payload, qos in messages:
            await sender.publish(topic, payload, qos=qos, **kw)


async def take(client: MqttClient, count: int, within: float = 10.0) -> list[Publish]:
    got: list[Publish] = []
    async with asyncio.timeout(within):
        while len(got) < count:
            got += await client.take(1000)
    return got


async def after_reconnect(
    address: Address, client_id: str, topic: str, protocol: int, session: Session | None = None
) -> list[Publish]:
    """What a new connection of the session receives before a marker published after
    it connected: the session's messages that were not acknowledged come first."""
    client = client_of(address, client_id, protocol, session=session)
    await client.connect()
    assert client.session_present
    try:
        await publish(address.port, topic, [(b"marker", 1)])
        got: list[Publish] = []
        async with asyncio.timeout(10):
            while not got or got[-1].payload != b"marker":
                batch = await client.take(1000)
                client.acknowledge(batch)
                got += batch
        return got[:-1]
    finally:
        await client.close()


@PROTOCOLS
async def test_messages_arrive_in_order_with_their_qos_retain_flag_and_properties(
    shared_broker: Address, name: str, protocol: int
) -> None:
    topic = f"{name}/sensor"
    client = client_of(shared_broker, name, protocol)
    await client.connect()
    await client.subscribe([(f"{name}/#", 2)], retain_handling=1)
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    props = Properties(PacketTypes.PUBLISH)
    props.ContentType = "application/json"
    props.UserProperty = [("site", "lyon"), ("unit", "\u00b0C")]
    await publish(shared_broker.port, topic, [(b"zero", 0), (b"one", 1), (b"two", 2)])
    await publish(shared_broker.port, topic, [(b'{"t": 21}', 1)], properties=props)
    got = await take(client, 4)
    assert [(m.topic, m.payload, m.qos, m.retain) for m in got] == [
        (topic, b"zero", 0, False),
        (topic, b"one", 1, False),
        (topic, b"two", 2, False),
        (topic, b'{"t": 21}', 1, False),
    ]
    if protocol == V5:
        assert got[3].properties == {
            "content_type": "application/json",
            "user_property": [("site", "lyon"), ("unit", "\u00b0C")],
        }
    else:
        assert got[3].properties is None  # MQTT 3.1.1 has none
    client.acknowledge(got)
    await client.close()
    assert await after_reconnect(shared_broker, name, topic, protocol) == []


@PROTOCOLS
@pytest.mark.parametrize("qos", [1, 2])
async def test_what_was_not_acknowledged_comes_again_to_the_session(
    shared_broker: Address, name: str, protocol: int, qos: int
) -> None:
    topic = f"{name}/t"
    client = client_of(shared_broker, name, protocol)
    await client.connect()
    await client.subscribe([(topic, qos)])
    await publish(shared_broker.port, topic, [(f"m{n}".encode(), qos) for n in range(5)])
    first = await take(client, 5)
    client.acknowledge(first[:2])  # the first two are committed; the process then dies
    await client.close()
    again = await after_reconnect(shared_broker, name, topic, protocol)
    assert [m.payload for m in again] == [b"m2", b"m3", b"m4"]
    assert all(m.dup for m in again)
    assert await after_reconnect(shared_broker, name, topic, protocol) == []


@PROTOCOLS
async def test_a_qos_2_message_acknowledged_just_before_a_disconnect_is_not_taken_twice(
    shared_broker: Address, name: str, protocol: int
) -> None:
    topic = f"{name}/t"
    session = Session()
    client = client_of(shared_broker, name, protocol, session=session)
    await client.connect()
    await client.subscribe([(topic, 2)])
    await publish(shared_broker.port, topic, [(b"once", 2)])
    got = await take(client, 1)
    client.acknowledge(got)  # PUBREC, then the connection ends before PUBREL is answered
    await client.close()
    assert await after_reconnect(shared_broker, name, topic, protocol, session) == []
    assert not session.released  # the broker released it on the new connection


async def test_a_new_session_starts_empty_and_forgets_the_old_ones_qos_2_state(
    shared_broker: Address, name: str
) -> None:
    session = Session(released={7})
    client = client_of(shared_broker, name, clean_start=True, session=session)
    await client.connect()
    assert not client.session_present
    assert session.released == set()
    await client.close()


@PROTOCOLS
async def test_credentials_from_the_url_are_checked_and_a_refusal_says_why(
    tmp_path: Path, protocol: int
) -> None:
    passwords = password_file(tmp_path, "sensor", "p@ss:w/rd")
    config = f"allow_anonymous false\npassword_file {passwords}\n"
    with mosquitto(tmp_path, config) as port:
        good = address_of(f"mqtt://sensor:p%40ss%3Aw%2Frd@{HOST}:{port}")
        client = client_of(good, "tf-auth", protocol)
        await client.connect()
        await client.close()
        bad = address_of(f"mqtt://sensor:wrong@{HOST}:{port}")
        with pytest.raises(AdapterError, match="refused the connection") as raised:
            await client_of(bad, "tf-auth", protocol).connect()
        words = "not authorized" if protocol == V5 else "not authorized|bad user name"
        assert any(w in str(raised.value) for w in words.split("|"))


async def test_tls_connects_to_a_broker_the_context_trusts_and_refuses_one_it_does_not(
    tmp_path: Path,
) -> None:
    cert, key = self_signed(tmp_path)
    config = f"allow_anonymous true\ncertfile {cert}\nkeyfile {key}\n"
    with mosquitto(tmp_path, config) as port:
        address = address_of(f"mqtts://{HOST}:{port}")
        assert address.tls
        trusted = client_of(address, "tf-tls", tls_context=ssl.create_default_context(cafile=cert))
        await trusted.connect()
        await trusted.subscribe([("tls/#", 1)])
        await trusted.close()
        with pytest.raises(AdapterError, match=r"cannot connect .*certificate verify failed"):
            await client_of(address, "tf-tls-default").connect()


async def test_keep_alive_pings_hold_a_quiet_connection(shared_broker: Address, name: str) -> None:
    client = client_of(shared_broker, name, keepalive=1)
    await client.connect()
    await client.subscribe([(name, 1)])
    # Mosquitto drops a client that sends nothing for 1.5 keep-alive intervals: this
    # wait is the quiet time the pings must cover.
    await asyncio.sleep(3.2)
    await publish(shared_broker.port, name, [(b"still here", 1)])
    assert [m.payload for m in await take(client, 1)] == [b"still here"]
    await client.close()


async def test_a_qos_0_flood_is_held_back_by_tcp_and_arrives_whole(
    shared_broker: Address, name: str
) -> None:
    client = client_of(shared_broker, name, high_water=16)
    await client.connect()
    await client.subscribe([(name, 0)])
    count = 3000
    payload = b"x" * 1024
    sender = asyncio.create_task(
        publish(shared_broker.port, name, [(payload + str(n).encode(), 0) for n in range(count)])
    )
    got: list[Publish] = []
    async with asyncio.timeout(60):
        while len(got) < count:
            got += await client.take(10)
            await asyncio.sleep(0)  # a slow consumer: the broker outruns it
    await sender
    assert [m.payload for m in got] == [payload + str(n).encode() for n in range(count)]
    await client.close()


@PROTOCOLS
@pytest.mark.parametrize("qos", [0, 1, 2])
async def test_publish_reaches_a_subscriber_with_its_properties(
    shared_broker: Address, name: str, protocol: int, qos: int
) -> None:
    async with aiomqtt.Client(HOST, 1883, protocol=aiomqtt.ProtocolVersion.V5) as reader:
        await reader.subscribe(f"{name}/#", qos=2)
        client = client_of(shared_broker, name + "-pub", protocol, clean_start=True)
        await client.connect()
        properties = {"content_type": "text/plain", "user_property": [("id", "1")]}
        await client.publish(f"{name}/out", b"hello", qos=qos, properties=(
            properties if protocol == V5 else None))  # fmt: skip
        async with asyncio.timeout(10):
            message = await anext(reader.messages)
        await client.close()
    assert (message.topic.value, message.payload, message.qos) == (f"{name}/out", b"hello", qos)
    if protocol == V5:
        assert message.properties.ContentType == "text/plain"
        assert message.properties.UserProperty == [("id", "1")]


async def test_a_publish_above_the_brokers_maximum_qos_is_refused_before_it_is_sent(
    tmp_path: Path,
) -> None:
    with mosquitto(tmp_path, "allow_anonymous true\nmax_qos 1\n") as port:
        client = client_of(Address(HOST, port, False, None, None), "tf-maxqos", clean_start=True)
        await client.connect()
        with pytest.raises(PublishRefused, match="up to QoS 1, not 2: set the sink's qos") as no:
            await client.publish("t", b"x", qos=2)
        assert no.value.code in PublishRefused.FINAL
        await client.publish("t", b"x", qos=1)
        await client.close()


# -- a scripted server, for what no real broker does on demand --------------------------


Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
async def scripted() -> AsyncIterator[Callable[..., Awaitable[Address]]]:
    """Serves ``script`` to each connection, after a CONNACK unless ``connack=False``."""
    servers: list[asyncio.Server] = []
    writers: list[asyncio.StreamWriter] = []

    async def serve(script: Script, connack: bool = True) -> Address:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writers.append(writer)
            await read_packet(reader)  # CONNECT
            if connack:
                writer.write(b"\x20\x03\x00\x00\x00")  # CONNACK: new session, accepted
            await script(reader, writer)

        server = await asyncio.start_server(handle, HOST, 0)
        servers.append(server)
        return Address(HOST, server.sockets[0].getsockname()[1], False, None, None)

    yield serve
    for writer in writers:
        writer.close()
    for server in servers:
        server.close()
        await server.wait_closed()


async def read_to_end(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read()


async def read_packet(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    first = (await reader.readexactly(1))[0]
    length, shift = 0, 0
    while True:
        byte = (await reader.readexactly(1))[0]
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    return first, await reader.readexactly(length)


async def test_a_broken_packet_fails_the_client_with_what_is_wrong(scripted: Any) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"\x36\x05\x00\x01a\x00\x01")  # a PUBLISH with QoS 3
        await reader.read()

    client = client_of(await scripted(script), "tf-broken")
    await client.connect()
    with pytest.raises(AdapterError, match="QoS 3"):
        await client.take(10)
    await client.close()


async def test_a_broker_gone_silent_fails_the_client_after_its_keep_alive(scripted: Any) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # reads the pings and never answers

    client = client_of(await scripted(script), "tf-silent", keepalive=1)
    await client.connect()
    async with asyncio.timeout(10):
        with pytest.raises(AdapterError, match=r"sent nothing for 1\.5 s \(keep alive\)"):
            await client.take(10)
    await client.close()


async def test_no_connack_within_the_timeout_is_an_error_that_says_so(scripted: Any) -> None:
    address = await scripted(read_to_end, connack=False)
    client = MqttClient(address, "tf-mute", timeout=0.5)
    with pytest.raises(AdapterError, match=r"no CONNACK from the MQTT broker within 0\.5 s"):
        await client.connect()
    await client.close()


async def test_a_qos_2_message_sent_again_after_its_pubrec_is_answered_not_taken(
    scripted: Any,
) -> None:
    answers: list[tuple[int, bytes]] = []
    all_answered = asyncio.Event()

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(wire.publish("t", b"once", qos=2, packet_id=5))
        answers.append(await read_packet(reader))  # the PUBREC, after the commit
        # As if the PUBREC was lost with a connection: the same message again.
        writer.write(wire.publish("t", b"once", qos=2, packet_id=5, dup=True))
        writer.write(wire.publish("t", b"marker", qos=0))
        answers.append(await read_packet(reader))  # PUBREC again, at once
        writer.write(wire.acknowledgement(wire.PUBREL, 5))
        answers.append(await read_packet(reader))  # PUBCOMP
        all_answered.set()
        await reader.read()

    session = Session()
    client = client_of(await scripted(script), "tf-qos2", session=session)
    await client.connect()
    first = await take(client, 1)
    assert [m.payload for m in first] == [b"once"]
    client.acknowledge(first)
    assert session.released == {5}
    assert [m.payload for m in await take(client, 1)] == [b"marker"]
    async with asyncio.timeout(5):
        await all_answered.wait()
    assert answers == [(0x50, b"\x00\x05"), (0x50, b"\x00\x05"), (0x70, b"\x00\x05")]
    assert session.released == set()
    await client.close()


@PROTOCOLS
async def test_a_refused_subscription_names_its_filter_and_a_granted_qos_comes_back(
    scripted: Any, protocol: int
) -> None:
    # Mosquitto grants what its ACL forbids (and filters deliveries), and drops the
    # connection on a filter it cannot parse (the source checks filters at deploy
    # time): the refusal codes come from a scripted broker.
    def suback(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, codes: bytes) -> Any:
        async def answer() -> None:
            kind, body = await read_packet(reader)
            assert kind == 0x82  # SUBSCRIBE
            writer.write(wire.packet(wire.SUBACK, 0, body[:2] + (b"\x00" if protocol == V5
                                                                  else b"") + codes))  # fmt: skip

        return answer()

    async def grants(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await suback(reader, writer, b"\x01\x00")
        await suback(reader, writer, b"\x01" + (b"\x87" if protocol == V5 else b"\x80"))
        await reader.read()

    client = MqttClient(await scripted(grants), "tf-suback", protocol=protocol, timeout=5)
    await client.connect()
    assert await client.subscribe([("a/#", 1), ("b/#", 1)]) == [1, 0]
    with pytest.raises(AdapterError, match="refused the subscription to 'secret/#'") as raised:
        await client.subscribe([("allowed/#", 1), ("secret/#", 1)])
    assert "allowed" not in str(raised.value)
    if protocol == V5:
        assert "not authorized (0x87)" in str(raised.value)
    with pytest.raises(AdapterError):
        await client.take(1)  # the client failed with it
    await client.close()


async def test_a_publish_the_broker_refuses_says_why_and_the_connection_goes_on(
    scripted: Any,
) -> None:
    async def refuse_then_take(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for code in (0x87, 0x00):
            kind, body = await read_packet(reader)
            assert kind >> 4 == wire.PUBLISH
            packet_id = body[body[1] + 2 : body[1] + 4]  # after the topic
            writer.write(wire.packet(wire.PUBACK, 0, packet_id + bytes([code, 0])))
        await reader.read()

    client = client_of(await scripted(refuse_then_take), "tf-refused")
    await client.connect()
    with pytest.raises(PublishRefused, match=r"refused the message to 'orders' \(PUBACK\): not "
                       r"authorized \(0x87\)") as raised:  # fmt: skip
        await client.publish("orders", b"x", qos=1)
    assert raised.value.code not in PublishRefused.FINAL  # it may be allowed later
    await client.publish("orders", b"y", qos=1)
    await client.close()


async def test_the_sink_rejects_for_good_what_the_broker_can_never_take(tmp_path: Path) -> None:
    with mosquitto(tmp_path, "allow_anonymous true\nmax_qos 1\n") as port:
        config = BrokerConfig(kind="mqtt", url=f"mqtt://{HOST}:{port}", qos=2)
        sink = make_sink("plant", config)
        event = new_event(source="test", type="t", data={"n": 1})
        (outcome,) = await sink.publish_batch([("alarms", event)])
        await sink.aclose()
    assert isinstance(outcome, SinkRejectedError)
    assert "takes messages up to QoS 1, not 2" in str(outcome)
