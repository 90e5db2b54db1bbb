"""Secrets through the application layer of a whole node, in-process: a deploy that
refers to a missing secret is refused, a secret set again reaches the next call with
no deploy (snapshot templates included), removing one in use needs ``force``, and the
literal secrets of webhooks and HTTP routes are stored sealed."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.projects import write_project
from triggerfish.api.app import create_app
from triggerfish.control import Control
from triggerfish.errors import ConfigError, ConflictError, NotFoundError
from triggerfish.functions.webhooks import WebhookConfig
from triggerfish.node import Node

# The value read when the module was imported (the init) and when the call runs.
HANDLER = """
import os

AT_INIT = os.environ.get("DB_PASSWORD")


def handler(event, context):
    return {"init": AT_INIT, "now": os.environ.get("DB_PASSWORD"), "pid": os.getpid()}
"""
REFERENCE = {"DB_PASSWORD": {"secret": "db-password"}}


async def deploy(control: Control, root: Path, **settings: Any) -> str:
    path = write_project(root, {"reader": (HANDLER, settings)})
    (result,) = await control.deploy_manifest(path)
    return result.version


async def call(node: Node) -> dict[str, Any]:
    result = await node.invoker.invoke("reader", b"{}")
    assert result.status == "ok", result
    answer: dict[str, Any] = json.loads(result.result or b"null")
    return answer


async def test_a_deploy_that_refers_to_a_missing_secret_is_refused(
    node: Node, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError) as refused:
        await deploy(node.control, tmp_path / "p", environment=REFERENCE)
    message = str(refused.value)
    assert "functions.reader.environment.DB_PASSWORD" in message
    assert "function 'reader' refers to the secret 'db-password', which does not exist" in message
    assert "`triggerfish secrets set db-password`" in message
    assert await node.control.functions.names() == []


@pytest.mark.parametrize("snapstart", [False, True])
async def test_a_secret_set_again_reaches_the_next_call_without_a_deploy(
    node: Node, tmp_path: Path, snapstart: bool
) -> None:
    control = node.control
    await control.secrets.set("db-password", "first")
    version = await deploy(control, tmp_path / "p", environment=REFERENCE, snapstart=snapstart)
    before = await call(node)
    assert (before["init"], before["now"]) == ("first", "first")

    await control.secrets.set("db-password", "second")

    after = await call(node)
    assert (after["init"], after["now"]) == ("second", "second")
    assert after["pid"] != before["pid"]  # an environment started after the change
    assert (await control.specs.resolve("reader")).version == version  # no new version
    assert [v.number for v in await control.functions.versions("reader")] == [1]


async def test_a_secret_in_use_is_removed_only_with_force(node: Node, tmp_path: Path) -> None:
    control = node.control
    await control.secrets.set("db-password", "first")
    await deploy(control, tmp_path / "p", environment=REFERENCE)
    await control.webhooks.put(
        "hook",
        WebhookConfig.model_validate({"topic": "hooks", "secret": {"secret": "db-password"}}),
    )
    (listing,) = await control.secrets.all()
    assert [use.describe() for use in listing.used_by] == [
        "function reader (DB_PASSWORD)",
        "webhook hook",
    ]

    with pytest.raises(ConflictError) as refused:
        await control.secrets.delete("db-password")
    assert "function reader (DB_PASSWORD); webhook hook" in str(refused.value)
    assert "--force" in str(refused.value)
    assert await call(node) != {}  # still there, still served

    await control.secrets.delete("db-password", force=True)
    with pytest.raises(NotFoundError, match="refers to the secret 'db-password', which does not"):
        await node.invoker.invoke("reader", b"{}")
    config = await control.webhooks.get("hook")
    with pytest.raises(ConfigError, match="`triggerfish secrets set db-password`"):
        await control.webhooks.signing_secret("hook", config)

    await control.secrets.set("db-password", "back")
    assert (await call(node))["now"] == "back"


async def test_webhooks_refer_only_to_what_exists(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    webhooks = node.control.webhooks
    monkeypatch.delenv("HOOK_VARIABLE_FOR_TESTS", raising=False)
    for secret, message in [
        ({"secret": "nope"}, "the secret 'nope' does not exist; set it with"),
        ("env:HOOK_VARIABLE_FOR_TESTS", "env:HOOK_VARIABLE_FOR_TESTS is not set in the server"),
        ({"sealed": "bm90IHNlYWxlZCBoZXJl"}, "does not open"),
    ]:
        config = WebhookConfig.model_validate({"topic": "hooks", "secret": secret})
        with pytest.raises(ConfigError, match=message):
            await webhooks.put("hook", config)
    assert await webhooks.all() == {}

    monkeypatch.setenv("HOOK_VARIABLE_FOR_TESTS", "from-env")
    config = WebhookConfig.model_validate(
        {"topic": "hooks", "secret": "env:HOOK_VARIABLE_FOR_TESTS"}
    )
    await webhooks.put("hook", config)
    assert await webhooks.signing_secret("hook", config) == "from-env"


async def test_a_literal_webhook_secret_is_stored_sealed(node: Node) -> None:
    literal = "a-literal-webhook-secret"
    webhooks = node.control.webhooks
    await webhooks.put("hook", WebhookConfig.model_validate({"topic": "hooks", "secret": literal}))

    body = await node.store.documents.get("webhook", "hook")
    assert literal not in json.dumps(body)
    assert set(body["secret"]) == {"sealed"}
    stored = await webhooks.get("hook")
    assert await webhooks.signing_secret("hook", stored) == literal
    # A sealed secret is bound to its webhook: under another name it does not open.
    with pytest.raises(ConfigError, match="does not open"):
        await webhooks.put("other", stored)


async def test_literal_secrets_stored_by_an_older_release_are_sealed_at_start(
    node: Node,
) -> None:
    literal = "stored-as-written"
    await node.store.documents.put("webhook", "old", {"topic": "hooks", "secret": literal})

    await node.control.start()

    body = await node.store.documents.get("webhook", "old")
    assert literal not in json.dumps(body)
    webhooks = node.control.webhooks
    assert await webhooks.signing_secret("old", await webhooks.get("old")) == literal


async def test_a_literal_route_secret_is_stored_sealed_and_older_rows_still_sign(
    node: Node, tmp_path: Path
) -> None:
    literal = "a-literal-route-secret"
    route = {"route": "POST /signed", "auth": "hmac", "secret": literal}
    settings = {"triggers": [{"name": "signed", "http": route}]}
    body = b'{"amount": 10}'
    signature = hmac.new(literal.encode(), body, hashlib.sha256).hexdigest()
    app = httpx.ASGITransport(app=create_app(node, manage_node=False))

    async def post(signed_with: str) -> int:
        async with httpx.AsyncClient(transport=app, base_url="http://triggerfish") as http:
            headers = {"X-Triggerfish-Signature": signed_with}
            return (await http.post("/fn/signed", content=body, headers=headers)).status_code

    async def stored() -> dict[str, Any]:
        (trigger,) = await node.store.list_triggers("reader")
        return trigger.config

    await deploy(node.control, tmp_path / "p", **settings)
    assert literal not in json.dumps(await stored())
    assert set((await stored())["http"]["secret"]) == {"sealed"}
    assert await post(signature) == 200
    assert await post(hmac.new(b"a guess", body, hashlib.sha256).hexdigest()) == 401

    # As an older release stored it: the secret as written. It still signs, and the
    # next deploy seals it.
    (trigger,) = await node.store.list_triggers("reader")
    older = {**trigger.config, "http": route}
    await node.store.replace_triggers("reader", [replace(trigger, config=older)])
    await node.control.changed("reader")
    assert (await stored())["http"]["secret"] == literal
    assert await post(signature) == 200

    await deploy(node.control, tmp_path / "p", **settings)
    assert literal not in json.dumps(await stored())
    assert await post(signature) == 200
