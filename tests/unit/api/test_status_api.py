"""``GET /v1/status`` in-process: the node, the disk each part uses, the free space
and what retention removed, for a token that may read; refused without one."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from triggerfish.api.app import create_app
from triggerfish.ids import id_floor, new_id
from triggerfish.node import Node
from triggerfish.store import InvocationRecord


@pytest.fixture
async def api(node: Node) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(node, manage_node=False))
    headers = {"Authorization": f"Bearer {node.admin_token}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://triggerfish", headers=headers
    ) as client:
        yield client


async def test_status_shows_each_part_and_what_retention_removed(
    node: Node, api: httpx.AsyncClient
) -> None:
    old = 1_600_000_000.0
    await node.store.record_invocations(
        [
            InvocationRecord(
                id=id_floor(old)[:10] + new_id()[10:],
                function="resize",
                version="0123456789ab",
                status="ok",
                started_at=old,
            )
        ]
    )
    await node.retention.run()

    answer = await api.get("/v1/status")

    assert answer.status_code == 200
    body = answer.json()
    assert body["node"] == node.node_id
    assert body["uptime"] >= 0
    parts = {part["name"]: part for part in body["disk"]["parts"]}
    assert list(parts) == ["bus", "store", "buckets", "artifacts", "environments"]
    assert (parts["bus"]["where"], parts["store"]["where"]) == ("sqlite", "sqlite")
    assert parts["bus"]["bytes"] > 0
    assert parts["store"]["bytes"] > 0
    assert body["disk"]["free_bytes"] > 0
    retention = body["retention"]
    assert retention["records_retention"] == node.settings.records_retention
    assert retention["pruned"]["invocations"] == 1
    assert retention["last_run"] is not None


async def test_status_needs_a_token(node: Node) -> None:
    transport = httpx.ASGITransport(app=create_app(node, manage_node=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://triggerfish") as client:
        assert (await client.get("/v1/status")).status_code == 401
