"""MQTT 3.1.1 and 5 packets: the ones the MQTT source and sink write, and a reader for
what a broker sends to a client.

The reader takes a buffer of bytes as they came off the socket and returns every
complete packet in it in one pass (``read_packets``), so a read that brought a hundred
PUBLISH packets costs one call, not a hundred: the source's throughput is bounded by
this loop. PUBLISH packets become ``Publish`` objects; other packets come back as
their type, flags and body for the client to handle.

Anything that breaks the protocol (a length that runs past its packet, a string that
is not UTF-8, a property the packet may not carry) is a ``MalformedPacket``: the
client handles the packets before it, then drops the connection, as the specification
asks, and the broker keeps what was not acknowledged.
"""

from __future__ import annotations

import struct
from typing import Any

from triggerfish.errors import AdapterError

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT = 8, 9, 10, 11, 12, 13, 14
AUTH = 15

V311, V5 = 4, 5  # protocol levels

PINGREQ_PACKET = b"\xc0\x00"
DISCONNECT_311 = b"\xe0\x00"
DISCONNECT_5 = b"\xe0\x02\x00\x00"  # normal disconnection, no properties

# MQTT 5 properties: identifier -> (name, how its value is encoded).
BYTE, INT2, INT4, VARINT, UTF8, BINARY, PAIR = range(7)
PROPERTIES: dict[int, tuple[str, int]] = {
    0x01: ("payload_format", BYTE),
    0x02: ("message_expiry", INT4),
    0x03: ("content_type", UTF8),
    0x08: ("response_topic", UTF8),
    0x09: ("correlation_data", BINARY),
    0x0B: ("subscription_identifier", VARINT),
    0x11: ("session_expiry", INT4),
    0x12: ("assigned_client_id", UTF8),
    0x13: ("server_keepalive", INT2),
    0x15: ("authentication_method", UTF8),
    0x16: ("authentication_data", BINARY),
    0x17: ("request_problem_information", BYTE),
    0x18: ("will_delay", INT4),
    0x19: ("request_response_information", BYTE),
    0x1A: ("response_information", UTF8),
    0x1C: ("server_reference", UTF8),
    0x1F: ("reason_string", UTF8),
    0x21: ("receive_maximum", INT2),
    0x22: ("topic_alias_maximum", INT2),
    0x23: ("topic_alias", INT2),
    0x24: ("maximum_qos", BYTE),
    0x25: ("retain_available", BYTE),
    0x26: ("user_property", PAIR),
    0x27: ("maximum_packet_size", INT4),
    0x28: ("wildcard_subscription_available", BYTE),
    0x29: ("subscription_identifier_available", BYTE),
    0x2A: ("shared_subscription_available", BYTE),
}
BY_NAME = {name: (identifier, kind) for identifier, (name, kind) in PROPERTIES.items()}
REPEATABLE = {"user_property", "subscription_identifier"}  # the others appear at most once

# CONNACK return codes of MQTT 3.1.1, and the reason codes of MQTT 5 a client meets
# (CONNACK, SUBACK, DISCONNECT), for error messages.
CONNACK_311 = {
    1: "the broker does not support MQTT 3.1.1 (try protocol: 5)",
    2: "client id refused",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorized",
}
REASONS_5 = {
    0x04: "disconnect with will message",
    0x80: "unspecified error",
    0x81: "malformed packet",
    0x82: "protocol error",
    0x83: "implementation specific error",
    0x84: "unsupported protocol version (try protocol: 3.1.1)",
    0x85: "client id not valid",
    0x86: "bad user name or password",
    0x87: "not authorized",
    0x88: "server unavailable",
    0x89: "server busy",
    0x8A: "banned",
    0x8B: "server shutting down",
    0x8C: "bad authentication method",
    0x8D: "keep alive timeout",
    0x8E: "session taken over (another client connected with the same client id)",
    0x8F: "topic filter invalid",
    0x90: "topic name invalid",
    0x91: "packet identifier in use",
    0x93: "receive maximum exceeded",
    0x94: "topic alias invalid",
    0x95: "packet too large",
    0x96: "message rate too high",
    0x97: "quota exceeded",
    0x98: "administrative action",
    0x99: "payload format invalid",
    0x9A: "retain not supported",
    0x9B: "QoS not supported",
    0x9C: "use another server",
    0x9D: "server moved",
    0x9E: "shared subscriptions not supported",
    0x9F: "connection rate exceeded",
    0xA0: "maximum connect time",
    0xA1: "subscription identifiers not supported",
    0xA2: "wildcard subscriptions not supported",
}


class MalformedPacket(AdapterError):
    """The broker sent bytes that are not an MQTT packet of this protocol."""


def reason(code: int, protocol: int = V5) -> str:
    """A reason code in words, with its number."""
    words = (REASONS_5 if protocol == V5 else CONNACK_311).get(code, "unknown reason")
    return f"{words} (0x{code:02x})"


# -- writing ------------------------------------------------------------------------


def varint(value: int) -> bytes:
    """A variable byte integer (1 to 4 bytes, up to 268,435,455)."""
    if not 0 <= value <= 268_435_455:
        raise ValueError(f"{value} does not fit an MQTT variable byte integer")
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | 0x80 if value else byte)
        if not value:
            return bytes(out)


def utf8(value: str) -> bytes:
    raw = value.encode()
    if len(raw) > 65535:
        raise ValueError(f"a string of {len(raw)} bytes does not fit an MQTT string")
    return struct.pack("!H", len(raw)) + raw


def binary(value: bytes) -> bytes:
    if len(value) > 65535:
        raise ValueError(f"{len(value)} bytes do not fit MQTT binary data")
    return struct.pack("!H", len(value)) + value


def packet(kind: int, flags: int, body: bytes) -> bytes:
    return bytes([kind << 4 | flags]) + varint(len(body)) + body


def properties(values: dict[str, Any]) -> bytes:
    """MQTT 5 properties, with their length first; ``values`` by the names of
    ``PROPERTIES`` (a repeatable one takes a list)."""
    out = bytearray()
    for name, value in values.items():
        identifier, kind = BY_NAME[name]
        for item in value if name in REPEATABLE else [value]:
            out.append(identifier)
            if kind == BYTE:
                out.append(item)
            elif kind == INT2:
                out += struct.pack("!H", item)
            elif kind == INT4:
                out += struct.pack("!I", item)
            elif kind == VARINT:
                out += varint(item)
            elif kind == UTF8:
                out += utf8(item)
            elif kind == BINARY:
                out += binary(item)
            else:
                out += utf8(item[0]) + utf8(item[1])
    return varint(len(out)) + bytes(out)


def connect(
    client_id: str,
    *,
    protocol: int,
    keepalive: int,
    clean_start: bool,
    username: str | None = None,
    password: str | None = None,
    connect_properties: dict[str, Any] | None = None,
) -> bytes:
    """A CONNECT packet (no will message)."""
    flags = 0x02 if clean_start else 0
    if username is not None:
        flags |= 0x80
    if password is not None:
        flags |= 0x40
    body = bytearray(utf8("MQTT") + bytes([protocol, flags]) + struct.pack("!H", keepalive))
    if protocol == V5:
        body += properties(connect_properties or {})
    body += utf8(client_id)
    if username is not None:
        body += utf8(username)
    if password is not None:
        body += binary(password.encode())
    return packet(CONNECT, 0, bytes(body))


def subscribe(
    packet_id: int, filters: list[tuple[str, int]], *, protocol: int, retain_handling: int = 0
) -> bytes:
    """A SUBSCRIBE packet for (filter, maximum QoS) pairs. In MQTT 5, ``retain_handling``
    1 asks for retained messages only when the subscription is new, 2 never."""
    body = bytearray(struct.pack("!H", packet_id))
    if protocol == V5:
        body += b"\x00"  # no properties
    for topic, qos in filters:
        options = qos | (retain_handling << 4 if protocol == V5 else 0)
        body += utf8(topic) + bytes([options])
    return packet(SUBSCRIBE, 0x02, bytes(body))


def acknowledgement(kind: int, packet_id: int) -> bytes:
    """PUBACK, PUBREC, PUBREL or PUBCOMP with success (the short form both protocols
    read)."""
    return bytes([kind << 4 | (0x02 if kind == PUBREL else 0), 2, packet_id >> 8, packet_id & 0xFF])


def publish(
    topic: str,
    payload: bytes,
    *,
    qos: int = 0,
    packet_id: int = 0,
    retain: bool = False,
    dup: bool = False,
    protocol: int = V5,
    publish_properties: dict[str, Any] | None = None,
) -> bytes:
    """A PUBLISH packet: what the sink sends, and what a broker sends to the source."""
    flags = (0x08 if dup else 0) | qos << 1 | (1 if retain else 0)
    body = bytearray(utf8(topic))
    if qos:
        body += struct.pack("!H", packet_id)
    if protocol == V5:
        body += properties(publish_properties or {})
    body += payload
    return packet(PUBLISH, flags, bytes(body))


# -- reading ------------------------------------------------------------------------


class Publish:
    """A PUBLISH packet as received: ``properties`` is None when it had none (always in
    MQTT 3.1.1), else a dict by the names of ``PROPERTIES``."""

    __slots__ = ("dup", "packet_id", "payload", "properties", "qos", "retain", "topic")

    def __init__(
        self,
        topic: str,
        payload: bytes,
        qos: int = 0,
        packet_id: int = 0,
        retain: bool = False,
        dup: bool = False,
        properties: dict[str, Any] | None = None,
    ) -> None:
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.packet_id = packet_id
        self.retain = retain
        self.dup = dup
        self.properties = properties

    def __repr__(self) -> str:
        return f"Publish({self.topic!r}, {len(self.payload)} bytes, qos={self.qos})"


def read_varint(data: bytes | bytearray | memoryview, at: int, end: int) -> tuple[int, int]:
    """The variable byte integer at ``at`` and the offset after it; (-1, at) when the
    bytes end before it does."""
    value, shift = 0, 0
    while at < end:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7
        if shift > 21:
            raise MalformedPacket("a variable byte integer longer than 4 bytes")
    return -1, at


def _text(data: bytes | bytearray | memoryview, at: int, end: int, what: str) -> tuple[str, int]:
    if at + 2 > end:
        raise MalformedPacket(f"{what} runs past the end of its packet")
    size = data[at] << 8 | data[at + 1]
    stop = at + 2 + size
    if stop > end:
        raise MalformedPacket(f"{what} runs past the end of its packet")
    try:
        return bytes(data[at + 2 : stop]).decode(), stop
    except UnicodeDecodeError:
        raise MalformedPacket(f"{what} is not UTF-8") from None


def read_properties(
    data: bytes | bytearray | memoryview, at: int, end: int
) -> tuple[dict[str, Any], int]:
    """The MQTT 5 properties at ``at`` (their length first) and the offset after them."""
    length, at = read_varint(data, at, end)
    stop = at + length
    if length < 0 or stop > end:
        raise MalformedPacket("properties run past the end of their packet")
    values: dict[str, Any] = {}
    while at < stop:
        identifier = data[at]
        at += 1
        known = PROPERTIES.get(identifier)
        if known is None:
            raise MalformedPacket(f"unknown property 0x{identifier:02x}")
        name, kind = known
        value: Any
        if kind == BYTE:
            if at + 1 > stop:
                raise MalformedPacket(f"property {name} runs past the properties' end")
            value, at = data[at], at + 1
        elif kind in (INT2, INT4):
            size = 2 if kind == INT2 else 4
            if at + size > stop:
                raise MalformedPacket(f"property {name} runs past the properties' end")
            value, at = int.from_bytes(data[at : at + size], "big"), at + size
        elif kind == VARINT:
            value, at = read_varint(data, at, stop)
            if value < 0:
                raise MalformedPacket(f"property {name} runs past the properties' end")
        elif kind == UTF8:
            value, at = _text(data, at, stop, f"property {name}")
        elif kind == BINARY:
            if at + 2 > stop or at + 2 + (data[at] << 8 | data[at + 1]) > stop:
                raise MalformedPacket(f"property {name} runs past the properties' end")
            size = data[at] << 8 | data[at + 1]
            value, at = bytes(data[at + 2 : at + 2 + size]), at + 2 + size
        else:
            key, at = _text(data, at, stop, f"property {name}")
            text, at = _text(data, at, stop, f"property {name}")
            value = (key, text)
        if name in REPEATABLE:
            values.setdefault(name, []).append(value)
        elif name in values:
            raise MalformedPacket(f"property {name} appears twice")
        else:
            values[name] = value
    return values, stop


def read_packets(buffer: bytearray, protocol: int) -> tuple[list[Any], int, MalformedPacket | None]:
    """Every complete packet at the start of ``buffer``, how many bytes they took (the
    caller removes them; the rest is the start of a packet still arriving), and the
    error of a broken packet after them, if one came (nothing after it is read).

    A PUBLISH becomes a ``Publish``; any other packet a ``(type, flags, body)`` tuple.
    """
    out: list[Any] = []
    view = memoryview(buffer)
    at, end = 0, len(buffer)
    try:
        while at + 2 <= end:
            first = view[at]
            length, body = read_varint(view, at + 1, end)
            if length < 0 or body + length > end:
                break  # not complete yet
            stop = body + length
            if first >> 4 == PUBLISH:
                out.append(_publish(view, first, body, stop, protocol))
            else:
                out.append((first >> 4, first & 0x0F, bytes(view[body:stop])))
            at = stop
        return out, at, None
    except MalformedPacket as exc:
        return out, at, exc
    finally:
        view.release()


def _publish(view: memoryview, first: int, at: int, end: int, protocol: int) -> Publish:
    qos = (first >> 1) & 3
    if qos == 3:
        raise MalformedPacket("a PUBLISH with QoS 3")
    topic, at = _text(view, at, end, "a PUBLISH's topic")
    packet_id = 0
    if qos:
        if at + 2 > end:
            raise MalformedPacket("a PUBLISH's packet identifier runs past its end")
        packet_id = view[at] << 8 | view[at + 1]
        at += 2
        if not packet_id:
            raise MalformedPacket("a QoS 1 or 2 PUBLISH with packet identifier 0")
    values = None
    if protocol == V5:
        if at < end and view[at] == 0:
            at += 1  # no properties: the common case, without a call
        else:
            values, at = read_properties(view, at, end)
            if "topic_alias" in values:
                # Triggerfish announces no Topic Alias Maximum: a broker may not use one.
                raise MalformedPacket("a PUBLISH with a topic alias, which was not allowed")
    return Publish(
        topic, bytes(view[at:end]), qos, packet_id, bool(first & 1), bool(first & 8), values
    )
