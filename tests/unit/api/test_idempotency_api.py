"""``/v1/idempotency`` in-process, signed as functions sign it: claims, results and
releases scoped to the function whose key signed them, and clear refusals for other
credentials and bad bodies."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from triggerfish.api.app import create_app
from triggerfish.idempotency.records import signed_headers
from triggerfish.node import Node


@pytest.fixture
async def api(node: Node) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(node, manage_node=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://triggerfish") as client:
        yield client


class Function:
    """Calls as the function ``name`` makes them, with its own access key."""

    def __init__(self, api: httpx.AsyncClient, key: tuple[str, str]) -> None:
        self.api = api
        self.key = key

    async def post(self, operation: str, body: dict[str, Any]) -> httpx.Response:
        content = json.dumps(body).encode()
        path = f"/v1/idempotency/{operation}"
        headers = signed_headers(
            "POST",
            "triggerfish",
            path,
            content,
            access_key=self.key[0],
            secret_key=self.key[1],
            region="us-east-1",
        )
        return await self.api.post(path, content=content, headers=headers)


async def function(node: Node, api: httpx.AsyncClient, name: str) -> Function:
    return Function(api, await node.access_keys.for_function(name))


async def test_a_claim_its_result_and_the_scope_of_its_function(
    node: Node, api: httpx.AsyncClient
) -> None:
    pay = await function(node, api, "pay")
    claimed = (await pay.post("claim", {"key": "order-1", "lease": 30})).json()
    assert claimed["status"] == "claimed"
    assert 29 < claimed["expires_in"] <= 30
    busy = (await pay.post("claim", {"key": "order-1", "lease": 30})).json()
    assert busy["status"] == "in_progress"
    assert 29 < busy["expires_in"] <= 30
    assert "token" not in busy

    result = {"receipt": "r-1", "amount": 12.5, "items": [1, None, "x"]}
    done = await pay.post(
        "complete",
        {"key": "order-1", "token": claimed["token"], "result": result, "expires": 600},
    )
    assert done.status_code == 200
    again = (await pay.post("claim", {"key": "order-1", "lease": 30})).json()
    assert (again["status"], again["result"]) == ("completed", result)
    assert 599 < again["expires_in"] <= 600

    # Another function's key names its own records: it neither sees nor settles these.
    ship = await function(node, api, "ship")
    theirs = (await ship.post("claim", {"key": "order-1", "lease": 30})).json()
    assert theirs["status"] == "claimed"
    stolen = await ship.post(
        "complete", {"key": "order-1", "token": claimed["token"], "result": 0, "expires": 60}
    )
    assert stolen.status_code == 409
    assert (await pay.post("claim", {"key": "order-1", "lease": 30})).json()["result"] == result


async def test_a_released_claim_lets_the_next_delivery_run(
    node: Node, api: httpx.AsyncClient
) -> None:
    pay = await function(node, api, "pay")
    claimed = (await pay.post("claim", {"key": "order-2", "lease": 30})).json()
    released = await pay.post("release", {"key": "order-2", "token": claimed["token"]})
    assert released.json() == {"released": True}
    again = (await pay.post("claim", {"key": "order-2", "lease": 30})).json()
    assert again["status"] == "claimed"

    late = await pay.post(
        "complete", {"key": "order-2", "token": claimed["token"], "result": 1, "expires": 60}
    )
    assert late.status_code == 409
    assert "another delivery took the key over" in late.json()["detail"]
    stale = await pay.post("release", {"key": "order-2", "token": claimed["token"]})
    assert stale.json() == {"released": False}


async def test_only_a_functions_own_key_may_call(node: Node, api: httpx.AsyncClient) -> None:
    body = {"key": "order-1", "lease": 30}
    unsigned = await api.post("/v1/idempotency/claim", json=body)
    assert unsigned.status_code == 401

    token, _record = await node.tokens.issue("admin", ["admin"])
    admin = await api.post(
        "/v1/idempotency/claim", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert admin.status_code == 403
    assert "signed with their own access key" in admin.json()["detail"]

    key = await node.access_keys.create("ops")
    ops = await Function(api, key).post("claim", body)
    assert ops.status_code == 403

    bad = await (await function(node, api, "pay")).post("claim", {"key": "", "lease": 0})
    assert bad.status_code == 400
    assert bad.json()["detail"] == (
        "key: String should have at least 1 character; lease: Input should be greater than 0"
    )
