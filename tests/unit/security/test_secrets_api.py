"""``/v1/secrets`` in-process, with tokens of each kind: a reader learns names, times
and references, never a value; changing a secret needs the deploy scope; and an error
about a body never repeats it."""

from __future__ import annotations

import httpx

from triggerfish.api.app import create_app
from triggerfish.node import Node

VALUE = "a-value-no-answer-may-hold"


async def client(node: Node, scopes: list[str]) -> httpx.AsyncClient:
    token, _record = await node.tokens.issue("test", scopes)
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(node, manage_node=False)),
        base_url="http://triggerfish",
        headers={"Authorization": f"Bearer {token}"},
    )


async def test_a_reader_sees_names_and_references_but_cannot_change_them(node: Node) -> None:
    async with await client(node, ["admin"]) as admin, await client(node, ["read"]) as reader:
        created = await admin.put("/v1/secrets/db-password", json={"value": VALUE})
        assert created.status_code == 201
        updated = await admin.put("/v1/secrets/db-password", json={"value": VALUE + "2"})
        assert updated.status_code == 200

        listed = await reader.get("/v1/secrets")
        one = await reader.get("/v1/secrets/db-password")
        assert listed.status_code == one.status_code == 200
        assert listed.json()["secrets"] == [one.json()]
        assert set(one.json()) == {"name", "created_at", "updated_at", "used_by"}
        assert VALUE not in listed.text + one.text

        for response in (
            await reader.put("/v1/secrets/db-password", json={"value": "mine now"}),
            await reader.delete("/v1/secrets/db-password"),
        ):
            assert response.status_code == 403
        assert await node.secrets.value("db-password") == VALUE + "2"


async def test_errors_about_a_body_never_repeat_it(node: Node) -> None:
    async with await client(node, ["admin"]) as admin:
        for body in (
            b'{"value": "' + VALUE.encode() + b'", "extra": 1}',
            b'{"value": "' + VALUE.encode(),
            b'["' + VALUE.encode() + b'"]',
        ):
            response = await admin.put("/v1/secrets/db-password", content=body)
            assert response.status_code == 400
            assert response.headers["content-type"] == "application/problem+json"
            assert VALUE not in response.text
        missing = await admin.delete("/v1/secrets/never-set")
        assert missing.status_code == 404
        assert "`triggerfish secrets ls`" in missing.json()["detail"]
