"""Weighted aliases, pinned aliases and automatic rollback on a whole node in-process:
invocations split by weight on every path and their records name the version that
ran; a deploy never moves a ``live`` a user pinned; a weighted version that keeps
failing is rolled back by the node, which says so on ``_triggerfish.releases``."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import orjson
import pytest

from support.projects import write_project
from triggerfish.api.app import create_app
from triggerfish.control import Control
from triggerfish.control.releases import RELEASES_TOPIC, ROLLED_BACK
from triggerfish.errors import NotFoundError
from triggerfish.events import Event
from triggerfish.node import Node

T = TypeVar("T")

HANDLER = """
VERSION = {version}


def handler(event, context):
    if VERSION == {failing}:
        raise RuntimeError("version {failing} is broken")
    return VERSION
"""


@pytest.fixture
async def api(node: Node) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(node, manage_node=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://triggerfish") as client:
        client.headers["authorization"] = f"Bearer {node.admin_token}"
        yield client


async def deploy(
    control: Control, root: Path, version: int, *, failing: int = 0, **settings: object
) -> Any:
    """Deploy ``greet`` with code that answers ``version`` (or fails, as ``failing``)."""
    source = HANDLER.format(version=version, failing=failing)
    path = write_project(root, {"greet": (source, {"max_concurrency": 4, **settings})})
    (result,) = await control.deploy_manifest(path)
    return result


async def eventually(check: Callable[[], Awaitable[T | None]], *, within: float, what: str) -> T:
    deadline = time.monotonic() + within
    while True:
        found = await check()
        if found:
            return found
        assert time.monotonic() < deadline, f"not within {within} s: {what}"
        await asyncio.sleep(0.05)


async def test_a_weighted_alias_splits_every_path_and_records_the_version_that_ran(
    node: Node, tmp_path: Path
) -> None:
    control = node.control
    one = (await deploy(control, tmp_path / "p", 1)).version
    two = (
        await deploy(control, tmp_path / "p", 2, triggers=[{"topic": "orders", "alias": "live"}])
    ).version
    await control.aliases.set("greet", "live", 1, routing={"2": 0.1})

    # The pick, counted where every path resolves the alias.
    picks = Counter([(await control.specs.resolve("greet")).version for _ in range(10_000)])
    assert abs(picks[two] / 10_000 - 0.1) < 0.02

    # Direct invocations, in parallel: both versions run, each record names its own.
    await control.aliases.set("greet", "live", 1, routing={"2": 0.5})
    results = []
    for _ in range(25):
        results += await asyncio.gather(*(node.invoker.invoke("greet", b"{}") for _ in range(20)))
    ran = Counter(result.version for result in results)
    assert set(ran) == {one, two}
    assert all(r.result == (b"1" if r.version == one else b"2") for r in results)
    assert 150 < ran[two] < 350
    await node.recorder.flush()
    records = await node.store.list_invocations(function="greet", limit=1000)
    assert Counter(r.version for r in records if r.trigger is None) == ran

    # Deliveries of a trigger pick per invocation too.
    events = [Event(id=f"e{n}", source="t", type="order") for n in range(100)]
    await node.bus.publish("orders", events)

    async def delivered() -> Counter[str] | None:
        await node.recorder.flush()
        found = await node.store.list_invocations(trigger="greet.orders", limit=1000)
        return Counter(r.version for r in found) if len(found) >= 100 else None

    by_version = await eventually(delivered, within=20, what="100 deliveries")
    assert set(by_version) == {one, two}


async def test_a_deploy_never_moves_a_live_a_user_pinned(node: Node, tmp_path: Path) -> None:
    control, root = node.control, tmp_path / "p"
    await deploy(control, root, 1)
    second = await deploy(control, root, 2)
    assert (await control.functions.version("greet")).number == 2
    await control.aliases.set("greet", "live", 1)

    again = await deploy(control, root, 2)  # the same manifest
    assert (again.created, again.number) == (False, 2)
    assert (await control.functions.version("greet")).number == 1
    (note,) = again.notes
    assert note.startswith("live stays at version 1, pinned by alias set at ")

    changed = await deploy(control, root, 3)
    assert (changed.created, changed.number) == (True, 3)
    assert (await control.functions.version("greet")).number == 1
    (note,) = changed.notes
    assert "`triggerfish alias follow greet live` to let deploys move it again" in note
    result = await node.invoker.invoke("greet", b"{}")
    assert result.result == b"1"

    await control.aliases.follow("greet", "live")
    assert (await control.functions.version("greet")).number == 1  # until the next deploy
    moved = await deploy(control, root, 4)
    assert (moved.number, moved.notes) == (4, ())
    assert (await control.functions.version("greet")).number == 4
    # A deploy of what live runs already moves nothing and says nothing.
    assert (await deploy(control, root, 4)).notes == ()
    assert second.notes == ()


async def test_a_failing_weighted_version_is_rolled_back_and_announced(
    node: Node, api: httpx.AsyncClient, tmp_path: Path
) -> None:
    control = node.control
    await deploy(control, tmp_path / "p", 1, failing=2)
    await deploy(control, tmp_path / "p", 2, failing=2)
    answer = await api.put(
        "/v1/functions/greet/aliases/live",
        json={
            "version": 1,
            "routing": {"2": 0.5},
            "rollback": {"on": "error_rate>0.05 over 5m", "min_invocations": 5},
        },
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["routing"] == {"2": 0.5}

    async def rolled_back() -> dict[str, Any] | None:
        await asyncio.gather(*(node.invoker.invoke("greet", b"{}") for _ in range(4)))
        await node.recorder.flush()
        alias = (await api.get("/v1/functions/greet/aliases/live")).json()
        return alias if alias["rolled_back"] else None

    alias = await eventually(rolled_back, within=15, what="the rollback of version 2")
    assert (alias["number"], alias["routing"]) == (1, {})
    assert alias["rolled_back"]["number"] == 2
    assert alias["rolled_back"]["error_rate"] > 0.05
    results = await asyncio.gather(*(node.invoker.invoke("greet", b"{}") for _ in range(20)))
    assert {r.result for r in results} == {b"1"}

    async def announced() -> list[Any] | None:
        # The rollback is in the store first; its event is published right after.
        try:
            return await node.bus.read(RELEASES_TOPIC) or None
        except NotFoundError:  # the first rollback makes the topic
            return None

    (stored,) = await eventually(announced, within=5, what="the rollback's event")
    assert (stored.event.type, stored.event.subject) == (ROLLED_BACK, "greet:live")
    data = orjson.loads(stored.event.data or b"{}")
    assert (data["function"], data["alias"], data["number"], data["main_number"]) == (
        "greet",
        "live",
        2,
        1,
    )
    assert data["error_rate"] == alias["rolled_back"]["error_rate"]


async def test_the_api_refuses_a_routing_it_cannot_follow_and_prices_each_version(
    node: Node, api: httpx.AsyncClient, tmp_path: Path
) -> None:
    await deploy(node.control, tmp_path / "p", 1)
    await deploy(node.control, tmp_path / "p", 2)
    url = "/v1/functions/greet/aliases/canary"
    cases = {
        "must be a number from 0 up to, not including, 1": {"version": 1, "routing": {"2": 1.5}},
        "no version '7'": {"version": 1, "routing": {"7": 0.1}},
        "version 1 is the alias's main version": {"version": 1, "routing": {"1": 0.1}},
        "one more version at most": {"version": 1, "routing": {"1": 0.1, "2": 0.1}},
        "give that version a weight too": {"version": 1, "rollback": "error_rate>0.1 over 1m"},
        "is not a rule": {"version": 1, "routing": {"2": 0.1}, "rollback": "when it fails"},
    }
    for message, body in cases.items():
        refused = await api.put(url, json=body)
        assert refused.status_code == 400, (body, refused.text)
        assert message in refused.json()["detail"], refused.text
    follow = await api.post("/v1/functions/greet/aliases/canary/follow")
    assert follow.status_code == 400
    assert "only 'live' follows deploys" in follow.json()["detail"]

    pinned = (await api.put("/v1/functions/greet/aliases/live", json={"version": 1})).json()
    assert (pinned["following"], pinned["number"]) == (False, 1)
    followed = (await api.post("/v1/functions/greet/aliases/live/follow")).json()
    assert (followed["following"], followed["number"]) == (True, 1)

    await api.put(url, json={"version": 1, "routing": {"2": 0.5}})
    for _ in range(20):
        assert (await api.post("/v1/functions/greet/invoke?qualifier=canary", json={})).is_success
    await node.recorder.flush()
    costs = (await api.get("/v1/costs", params={"function": "greet", "by_version": True})).json()
    per_version = {row["version"]: row["requests"] for row in costs["versions"]}
    assert sum(per_version.values()) == costs["total"]["requests"] == 20
    assert len(per_version) == 2
