"""What the MQTT source and sink take from aiomqtt and paho beyond their public API.

These fail when a new aiomqtt or paho changes what Triggerfish relies on (the versions
are pinned in pyproject.toml until they pass): aiomqtt's paho client, on which manual
acknowledgements are set, and the tables paho's MQTT 5 ``Properties`` build, which the
source shares between instances because building them was most of a message's cost.
"""

from __future__ import annotations

from typing import Any

import pytest

aiomqtt = pytest.importorskip("aiomqtt")
from paho.mqtt import client as paho  # noqa: E402
from paho.mqtt import packettypes, properties  # noqa: E402
from paho.mqtt.properties import MQTTException  # noqa: E402

from triggerfish.sources.brokers.mqtt import paho_client, share_property_tables  # noqa: E402

PACKETS = packettypes.PacketTypes


@pytest.fixture
def shared() -> Any:
    share_property_tables(properties, packettypes)
    return properties.Properties


def unshared(cls: Any, packet: int) -> Any:
    made = cls.__new__(cls)
    cls._unshared_init(made, packet)
    return made


@pytest.mark.parametrize("packet", [*PACKETS.indexes, PACKETS.WILLMESSAGE])
def test_every_packet_types_properties_start_as_paho_builds_them(shared: Any, packet: int) -> None:
    assert vars(shared(packet)) == vars(unshared(shared, packet))


def test_properties_set_on_one_publish_stay_on_it_and_survive_a_round_trip(shared: Any) -> None:
    sent = shared(PACKETS.PUBLISH)
    sent.ContentType = "application/json"
    sent.UserProperty = [("ce_id", "1"), ("ce_type", "t")]
    received = shared(PACKETS.PUBLISH)
    assert not hasattr(received, "ContentType")
    received.unpack(sent.pack())
    assert received.ContentType == "application/json"
    assert received.UserProperty == [("ce_id", "1"), ("ce_type", "t")]
    with pytest.raises(MQTTException, match="does not apply"):
        shared(PACKETS.PUBLISH).ReceiveMaximum = 10


def test_sharing_twice_keeps_the_first_tables(shared: Any) -> None:
    before = shared(PACKETS.CONNECT).names
    share_property_tables(properties, packettypes)
    assert shared(PACKETS.CONNECT).names is before


async def test_aiomqtt_keeps_its_paho_client_with_manual_acknowledgements() -> None:
    client = aiomqtt.Client("127.0.0.1", 1883, identifier="private-api-check")
    under = paho_client(client)
    assert isinstance(under, paho.Client)
    under.manual_ack_set(True)
    assert callable(under.ack)
