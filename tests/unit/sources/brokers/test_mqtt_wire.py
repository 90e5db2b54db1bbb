"""The MQTT packets Triggerfish writes and reads (``sources/brokers/mqtt/wire.py``): what
goes on the wire is what the specification says, what comes off it is read in one pass
whatever the socket's reads cut it into, and what breaks the protocol is refused."""

from __future__ import annotations

import re
import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from triggerfish.sources.brokers.mqtt import wire
from triggerfish.sources.brokers.mqtt.wire import V5, V311, MalformedPacket, Publish


def read_all(data: bytes, protocol: int = V5) -> list[Any]:
    packets, used, broken = wire.read_packets(bytearray(data), protocol)
    assert (used, broken) == (len(data), None)
    return packets


def fields(item: Publish) -> tuple[Any, ...]:
    return (item.topic, item.payload, item.qos, item.packet_id, item.retain, item.dup,
            item.properties)  # fmt: skip


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, b"\x00"),
        (127, b"\x7f"),
        (128, b"\x80\x01"),
        (16_383, b"\xff\x7f"),
        (16_384, b"\x80\x80\x01"),
        (2_097_151, b"\xff\xff\x7f"),
        (2_097_152, b"\x80\x80\x80\x01"),
        (268_435_455, b"\xff\xff\xff\x7f"),
    ],
)
def test_variable_byte_integers_are_encoded_as_the_specification_shows(
    value: int, encoded: bytes
) -> None:
    assert wire.varint(value) == encoded
    assert wire.read_varint(encoded, 0, len(encoded)) == (value, len(encoded))
    assert wire.read_varint(encoded[:-1], 0, len(encoded) - 1)[0] == -1  # not complete


def test_a_variable_byte_integer_too_large_is_refused_both_ways() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        wire.varint(268_435_456)
    with pytest.raises(MalformedPacket, match="longer than 4 bytes"):
        wire.read_varint(b"\xff\xff\xff\xff\x01", 0, 5)


def test_connect_carries_flags_keepalive_properties_and_credentials() -> None:
    data = wire.connect(
        "c1",
        protocol=V5,
        keepalive=30,
        clean_start=False,
        username="u",
        password="p\u00e9",
        connect_properties={"session_expiry": 3600, "receive_maximum": 200},
    )
    assert data[0] == 0x10
    length, body = wire.read_varint(data, 1, len(data))
    assert body + length == len(data)
    assert data[body : body + 6] == b"\x00\x04MQTT"
    assert data[body + 6] == 5
    assert data[body + 7] == 0x80 | 0x40  # user name and password, clean start off
    assert struct.unpack("!H", data[body + 8 : body + 10]) == (30,)
    values, at = wire.read_properties(data, body + 10, len(data))
    assert values == {"session_expiry": 3600, "receive_maximum": 200}
    assert data[at:] == b"\x00\x02c1" + b"\x00\x01u" + b"\x00\x03p\xc3\xa9"


def test_connect_in_311_has_no_properties_and_sets_clean_session() -> None:
    data = wire.connect("c1", protocol=V311, keepalive=5, clean_start=True)
    assert data == b"\x10\x0e\x00\x04MQTT\x04\x02\x00\x05\x00\x02c1"


def test_subscribe_asks_for_retained_messages_by_the_rule_only_in_mqtt_5() -> None:
    v5 = wire.subscribe(7, [("a/#", 1), ("b/+", 2)], protocol=V5, retain_handling=1)
    assert v5 == b"\x82\x0f\x00\x07\x00" + b"\x00\x03a/#\x11" + b"\x00\x03b/+\x12"
    v311 = wire.subscribe(7, [("a/#", 1)], protocol=V311, retain_handling=1)
    assert v311 == b"\x82\x08\x00\x07" + b"\x00\x03a/#\x01"


def test_acknowledgements_name_their_packet_and_pubrel_has_its_flags() -> None:
    assert wire.acknowledgement(wire.PUBACK, 0x1234) == b"\x40\x02\x12\x34"
    assert wire.acknowledgement(wire.PUBREC, 1) == b"\x50\x02\x00\x01"
    assert wire.acknowledgement(wire.PUBREL, 1) == b"\x62\x02\x00\x01"
    assert wire.acknowledgement(wire.PUBCOMP, 1) == b"\x70\x02\x00\x01"


def test_every_publish_of_one_read_comes_out_in_order_with_its_flags() -> None:
    data = (
        wire.publish("a/1", b"x", qos=0)
        + wire.publish("a/2", b'{"n": 2}', qos=1, packet_id=9, retain=True)
        + wire.publish("a/3", b"", qos=2, packet_id=10, dup=True)
        + wire.acknowledgement(wire.PUBREL, 4)
    )
    out = read_all(data)
    assert [fields(p) for p in out[:3]] == [
        ("a/1", b"x", 0, 0, False, False, None),
        ("a/2", b'{"n": 2}', 1, 9, True, False, None),
        ("a/3", b"", 2, 10, False, True, None),
    ]
    assert out[3] == (wire.PUBREL, 0x02, b"\x00\x04")


def test_a_311_payload_that_starts_with_a_zero_byte_is_not_read_as_properties() -> None:
    (publish,) = read_all(wire.publish("t", b"\x00\x01", protocol=V311), V311)
    assert publish.payload == b"\x00\x01"
    assert publish.properties is None


def test_a_publish_keeps_its_properties_user_properties_in_order() -> None:
    props = {
        "content_type": "application/json",
        "user_property": [("k", "1"), ("k", "2"), ("caf\u00e9", "cr\u00e8me")],
        "message_expiry": 60,
        "correlation_data": b"\x00\xff",
        "subscription_identifier": [3, 300],
    }
    (publish,) = read_all(wire.publish("t", b"p", qos=1, packet_id=1, publish_properties=props))
    assert publish.properties == props
    assert publish.payload == b"p"


text = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)


@given(
    packets=st.lists(
        st.tuples(
            text.filter(lambda t: t != ""),
            st.binary(max_size=300),
            st.integers(0, 2),
            st.lists(st.tuples(text, text), max_size=3),
        ),
        min_size=1,
        max_size=6,
    ),
    cuts=st.lists(st.integers(1, 2000), max_size=8),
)
def test_packets_come_out_whole_however_the_reads_cut_them(
    packets: list[tuple[str, bytes, int, list[tuple[str, str]]]], cuts: list[int]
) -> None:
    data = b"".join(
        wire.publish(
            topic, payload, qos=qos, packet_id=qos and n + 1,
            publish_properties={"user_property": users} if users else None,
        )
        for n, (topic, payload, qos, users) in enumerate(packets)
    )  # fmt: skip
    buffer = bytearray()
    out: list[Publish] = []
    at = 0
    for stop in [*sorted(set(cuts)), len(data)]:
        if stop <= at or stop > len(data):
            continue
        buffer += data[at:stop]
        at = stop
        got, used, broken = wire.read_packets(buffer, V5)
        assert broken is None
        del buffer[:used]
        out.extend(got)
    assert not buffer
    assert [(p.topic, p.payload, p.qos, (p.properties or {}).get("user_property", []))
            for p in out] == [(t, b, q, u) for t, b, q, u in packets]  # fmt: skip


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"\x30\x05\x00\x09abc", "runs past the end"),
        (b"\x30\x04\x00\x02\xff\xfe", "not UTF-8"),
        (b"\x36\x05\x00\x01a\x00\x01", "QoS 3"),
        (b"\x32\x06\x00\x01a\x00\x00\x00", "packet identifier 0"),
        (b"\x32\x04\x00\x01a\x00", "packet identifier runs past"),
        (b"\x30\x06\x00\x01a\x02\x7f\x00", "unknown property 0x7f"),
        (b"\x30\x0d\x00\x01a\x08\x03\x00\x01x\x03\x00\x01y\x00", "content_type appears twice"),
        (b"\x30\x07\x00\x01a\x03\x23\x00\x01", "topic alias"),
        (b"\x30\x0c\x00\x01a\x02\x03\x00\x00\x05hello", "content_type runs past"),
        (b"\x30\x07\x00\x01a\x02\x02\x00\x00", "message_expiry runs past"),
        (b"\x30\x03\x00\x01a", "properties run past"),
    ],
)
def test_what_breaks_the_protocol_is_refused_with_what_is_wrong(data: bytes, problem: str) -> None:
    good = wire.publish("before", b"ok")
    packets, used, broken = wire.read_packets(bytearray(good + data + good), V5)
    assert [p.topic for p in packets] == ["before"]  # what came before it is read
    assert used == len(good)
    assert isinstance(broken, MalformedPacket)
    assert re.search(problem, str(broken))


def test_a_packet_still_arriving_is_left_in_the_buffer() -> None:
    whole = wire.publish("t", b"x" * 1000, qos=1, packet_id=1)
    buffer = bytearray(whole[:-1])
    assert wire.read_packets(buffer, V5) == ([], 0, None)
    buffer += whole[-1:]
    packets, used, _ = wire.read_packets(buffer, V5)
    assert used == len(whole)
    assert packets[0].payload == b"x" * 1000


def test_reason_codes_read_as_words() -> None:
    assert wire.reason(0x87) == "not authorized (0x87)"
    assert wire.reason(4, V311) == "bad user name or password (0x04)"
    assert wire.reason(0xFE) == "unknown reason (0xfe)"
