"""The IoT example of docs/brokers.md, deployed as shipped: sensor readings on MQTT,
an alert only for readings above 30 degrees."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from integration.brokers.cases import HOST, MQTT_URL, connected, eventually, unique_name
from triggerfish.node import Node

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "iot" / "triggerfish.yaml"


async def test_only_hot_readings_raise_an_alert(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    from support.services import require_port

    require_port(HOST, 1883, "Mosquitto")
    import aiomqtt

    monkeypatch.setenv("MQTT_URL", MQTT_URL)
    await node.control.deploy_manifest(EXAMPLE)
    await eventually(lambda: connected(node), what="the MQTT source to connect")
    site = unique_name("site")
    async with aiomqtt.Client(HOST, 1883) as client:
        for device, temperature in (("cold-1", 21.0), ("hot-1", 31.5), ("edge-1", 30)):
            reading = json.dumps({"temperature": temperature, "unit": "C"})
            await client.publish(f"sensors/{site}/{device}/reading", reading, qos=1)

    async def alerts() -> list[dict[str, object]]:
        done = await node.store.list_invocations(function="alert", status="ok")
        return [json.loads(r.result or b"null") for r in done]

    results = await eventually(alerts, what="the alert")
    assert results == [{"site": site, "device": "hot-1", "temperature": 31.5}]
