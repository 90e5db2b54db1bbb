"""The application layer on a whole node in-process: a change is in force for the very
next call, and a delete takes away everything the function ran."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.projects import write_project
from triggerfish.config import Settings
from triggerfish.control import Control
from triggerfish.errors import NotFoundError
from triggerfish.node import Node

HANDLER = """
VERSION = {version}


def handler(event, context):
    return VERSION
"""


async def deploy(control: Control, root: Path, version: int, **settings: object) -> str:
    """Deploy ``greet`` with code that answers ``version``; its version id."""
    path = write_project(root, {"greet": (HANDLER.format(version=version), settings)})
    (result,) = await control.deploy_manifest(path)
    return result.version


def pools(node: Node) -> set[str]:
    """The functions with environments (or a pool for them) on the node."""
    return {pool.function for pool in node.executor.pool_stats()}


async def trigger_ids(control: Control) -> list[str]:
    """The triggers the node runs (each function has ``_async``, for async invokes)."""
    return sorted(trigger["id"] for trigger in await control.functions.triggers())


async def test_an_alias_move_is_in_force_for_the_next_resolve(node: Node, tmp_path: Path) -> None:
    control = node.control
    first = await deploy(control, tmp_path / "p", 1)
    second = await deploy(control, tmp_path / "p", 2)
    await control.aliases.set("greet", "stable", 1)
    assert (await control.specs.resolve("greet", "stable")).version == first
    assert (await control.specs.resolve("greet")).version == second

    await control.aliases.set("greet", "stable", 2)
    await control.aliases.set("greet", "live", 1)

    assert (await control.specs.resolve("greet", "stable")).version == second
    assert (await control.specs.resolve("greet")).version == first
    result = await node.invoker.invoke("greet", b"{}")
    assert (result.status, result.result) == ("ok", b"1")


async def test_deleting_an_alias_leaves_its_callers_nothing_to_resolve(
    node: Node, tmp_path: Path
) -> None:
    control = node.control
    await deploy(control, tmp_path / "p", 1)
    await control.aliases.set("greet", "beta", 1)
    await control.specs.resolve("greet", "beta")

    await control.aliases.delete("greet", "beta")

    with pytest.raises(NotFoundError, match="no alias or version 'beta'"):
        await control.specs.resolve("greet", "beta")
    assert [a.name for a in await control.aliases.all("greet")] == ["live"]


async def test_deleting_a_function_stops_its_triggers_and_its_environments(
    node: Node, tmp_path: Path
) -> None:
    control = node.control
    await deploy(control, tmp_path / "p", 1, min_warm=1, triggers=[{"topic": "orders"}])
    assert await trigger_ids(control) == ["greet._async", "greet.orders"]
    assert "greet" in pools(node)
    generation = control.generation

    await control.functions.delete("greet")

    assert await trigger_ids(control) == []
    assert node.dispatcher.subscription("greet.orders") is None
    assert "greet" not in pools(node)
    assert control.generation > generation
    with pytest.raises(NotFoundError):
        await control.specs.resolve("greet")
    with pytest.raises(NotFoundError):
        await control.topics.replay("orders", "greet.orders", offset=0, since=None)


async def test_a_change_made_elsewhere_is_in_force_after_invalidate_local(
    node: Node, tmp_path: Path
) -> None:
    control = node.control
    first = await deploy(control, tmp_path / "p", 1)
    second = await deploy(control, tmp_path / "p", 2, triggers=[{"topic": "orders"}])
    assert (await control.specs.resolve("greet")).version == second
    # Another node of the cluster moves the alias and drops the trigger, in the store.
    await node.store.set_alias("greet", "live", 1)
    await node.store.replace_triggers("greet", [])
    assert (await control.specs.resolve("greet")).version == second  # still cached

    await control.invalidate_local()

    assert (await control.specs.resolve("greet")).version == first
    assert await trigger_ids(control) == ["greet._async"]


async def test_a_function_deleted_elsewhere_loses_its_environments_here(
    node: Node, tmp_path: Path
) -> None:
    await deploy(node.control, tmp_path / "p", 1, min_warm=1)
    assert "greet" in pools(node)
    await node.store.delete_function("greet")  # by another node of the cluster

    await node.control.invalidate_local()

    assert "greet" not in pools(node)
    assert await trigger_ids(node.control) == []


async def test_a_manifest_deploys_its_topics_webhooks_and_brokers_first(
    node: Node, tmp_path: Path
) -> None:
    path = write_project(
        tmp_path / "p",
        {
            "greet": (
                HANDLER.format(version=1),
                {"triggers": [{"topic": "hooks"}], "destinations": {"on_success": "out:done"}},
            )
        },
        topics={"audit": {"retention": 3600}},
    )
    text = path.read_text()
    path.write_text(
        text
        + "webhooks:\n  shop:\n    topic: hooks\n"
        + "brokers:\n  out:\n    kind: redis\n    url: redis://127.0.0.1:1\n"
    )

    await node.control.deploy_manifest(path)

    topics = {t.name: t.retention for t in await node.control.topics.all()}
    assert topics["audit"] == 3600
    assert "hooks" in topics
    webhooks = await node.control.webhooks.all()
    assert webhooks["shop"].topic == "hooks"
    brokers = await node.control.brokers.all()
    assert brokers["out"].kind == "redis"
    live = await node.control.functions.version("greet")
    assert live.settings.destinations.on_success == "out:done"


async def test_a_deploy_starts_an_environment_of_the_new_version_for_its_first_call(
    node: Node, tmp_path: Path
) -> None:
    version = await deploy(node.control, tmp_path / "p", 1)
    stats = [s for s in node.executor.pool_stats() if s.version == version]
    assert [s.idle + s.starting for s in stats] == [1]  # before any call
    result = await node.invoker.invoke("greet", b"{}")
    assert (result.status, result.result, result.cold_start) == ("ok", b"1", False)
    await deploy(node.control, tmp_path / "p", 1)  # unchanged: no new version, none started
    assert [s.prewarmed for s in node.executor.pool_stats()] == [1]


async def test_without_warm_on_deploy_the_first_call_starts_the_environment(
    tmp_path: Path,
) -> None:
    node = Node(Settings(data_dir=tmp_path / "data", shutdown_grace=1.0, warm_on_deploy=False))
    await node.start()
    try:
        await deploy(node.control, tmp_path / "p", 1)
        assert [s.idle + s.starting for s in node.executor.pool_stats()] in ([], [0])
        result = await node.invoker.invoke("greet", b"{}")
        assert (result.status, result.cold_start) == ("ok", True)
    finally:
        await node.stop()
