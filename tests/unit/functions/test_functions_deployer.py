"""Deploys: versions are created only on change, live follows, triggers follow the manifest."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from triggerfish.errors import BuildError, NotFoundError, ValidationError
from triggerfish.functions import (
    ArtifactStore,
    Deployer,
    FunctionConfig,
    load_manifest,
    pack_directory,
)
from triggerfish.store import SqlStore

SHOP = Path(__file__).parents[2] / "fixtures" / "manifests" / "shop"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    async with SqlStore(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}") as opened:
        yield opened


@pytest.fixture
def deployer(store: SqlStore, tmp_path: Path) -> Deployer:
    return Deployer(store, ArtifactStore(tmp_path / "artifacts"))


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    return Path(shutil.copytree(SHOP, tmp_path / "shop"))


def config(**fields: object) -> FunctionConfig:
    return FunctionConfig.model_validate({"handler": "main.handler", **fields})


def code(tmp_path: Path, body: str = "def handler(e, c):\n    return 1\n") -> bytes:
    folder = tmp_path / "code"
    folder.mkdir(exist_ok=True)
    (folder / "main.py").write_text(body)
    return pack_directory(folder)


async def test_first_deploy_creates_version_1_and_points_live_at_it(
    deployer: Deployer, store: SqlStore, tmp_path: Path
) -> None:
    result = await deployer.deploy("resize", config(), code(tmp_path))

    assert (result.function, result.number, result.created) == ("resize", 1, True)
    assert len(result.version) == 12
    live = await store.resolve("resize")
    assert live.version == result.version
    spec = deployer.spec_for(live)
    assert (spec.code_dir / "main.py").read_text().startswith("def handler")
    assert (spec.function, spec.version, spec.handler, spec.runtime) == (
        "resize",
        result.version,
        "main.handler",
        "python",
    )


async def test_an_unchanged_deploy_creates_nothing(
    deployer: Deployer, store: SqlStore, tmp_path: Path
) -> None:
    first = await deployer.deploy("resize", config(), code(tmp_path))

    again = await deployer.deploy("resize", config(), code(tmp_path))

    assert (again.created, again.version, again.number) == (False, first.version, 1)
    assert len(await store.list_versions("resize")) == 1


async def test_a_code_change_makes_version_2_and_moves_live(
    deployer: Deployer, store: SqlStore, tmp_path: Path
) -> None:
    first = await deployer.deploy("resize", config(), code(tmp_path))

    second = await deployer.deploy("resize", config(), code(tmp_path, "def handler(e, c): 2\n"))

    assert (second.created, second.number) == (True, 2)
    assert second.version != first.version
    assert (await store.resolve("resize")).version == second.version
    old = deployer.spec_for(await store.resolve("resize", "1"))
    assert "return 1" in (old.code_dir / "main.py").read_text()


async def test_a_settings_change_makes_a_new_version(
    deployer: Deployer, store: SqlStore, tmp_path: Path
) -> None:
    await deployer.deploy("resize", config(), code(tmp_path))

    result = await deployer.deploy(
        "resize", config(memory=512, timeout=3, environment={"A": "1"}), code(tmp_path)
    )

    assert (result.created, result.number) == (True, 2)
    spec = deployer.spec_for(await store.resolve("resize"))
    assert (spec.memory, spec.timeout, dict(spec.environment)) == (512, 3.0, {"A": "1"})


async def test_redeploying_an_older_version_moves_live_back_without_a_new_one(
    deployer: Deployer, store: SqlStore, tmp_path: Path
) -> None:
    first = await deployer.deploy("resize", config(), code(tmp_path))
    await deployer.deploy("resize", config(memory=256), code(tmp_path))

    back = await deployer.deploy("resize", config(), code(tmp_path))

    assert (back.created, back.number) == (False, 1)
    assert (await store.resolve("resize")).version == first.version


async def test_trigger_changes_apply_without_a_new_version(
    deployer: Deployer, store: SqlStore, tmp_path: Path
) -> None:
    first = await deployer.deploy("resize", config(triggers=[{"topic": "orders"}]), code(tmp_path))
    assert first.triggers_added == ("resize.orders",)

    second = await deployer.deploy(
        "resize",
        config(triggers=[{"topic": "orders", "batch_size": 5}, {"topic": "images"}]),
        code(tmp_path),
    )
    third = await deployer.deploy("resize", config(), code(tmp_path))

    assert (second.created, second.triggers_added, second.triggers_removed) == (
        False,
        ("resize.images",),
        (),
    )
    assert (third.triggers_added, third.triggers_removed) == (
        (),
        ("resize.images", "resize.orders"),
    )
    assert len(await store.list_versions("resize")) == 1


async def test_the_trigger_keeps_its_group_id_across_redeploys(
    deployer: Deployer, store: SqlStore, tmp_path: Path
) -> None:
    await deployer.deploy("resize", config(triggers=[{"topic": "orders"}]), code(tmp_path))
    await deployer.deploy(
        "resize", config(memory=1024, triggers=[{"topic": "orders"}]), code(tmp_path)
    )

    [trigger] = await store.list_triggers("resize")
    assert (trigger.id, trigger.topic, trigger.qualifier) == ("resize.orders", "orders", "live")
    assert trigger.config["retry"]["max_attempts"] == 3


async def test_deploying_a_manifest_packs_each_code_folder(
    deployer: Deployer, store: SqlStore, shop: Path
) -> None:
    results = await deployer.deploy_manifest(load_manifest(shop))

    assert [(r.function, r.number, r.created) for r in results] == [
        ("resize", 1, True),
        ("notify", 1, True),
    ]
    assert [t.id for t in await store.list_triggers()] == ["notify.on-orders", "resize.orders"]
    notify = deployer.spec_for(await store.resolve("notify"))
    assert (notify.code_dir / "app" / "handlers.py").is_file()
    assert notify.handler == "app.handlers.on_order"
    resize = deployer.spec_for(await store.resolve("resize"))
    assert (resize.runtime, resize.memory, resize.timeout) == ("python3.11", 256, 30.0)
    assert dict(resize.environment) == {"STAGE": "dev", "WIDTH": "640"}

    (shop / "resize" / "__pycache__").mkdir()
    (shop / "resize" / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"\0")
    again = await deployer.deploy_manifest(load_manifest(shop))
    assert [r.created for r in again] == [False, False]

    (shop / "resize" / "main.py").write_text("def handler(event, context):\n    return 2\n")
    changed = await deployer.deploy_manifest(load_manifest(shop))
    assert [(r.function, r.number, r.created) for r in changed] == [
        ("resize", 2, True),
        ("notify", 1, False),
    ]


async def test_a_bad_function_name_is_refused(deployer: Deployer, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="function name 'Bad Name'"):
        await deployer.deploy("Bad Name", config(), code(tmp_path))


async def test_a_bad_package_is_refused_and_nothing_is_stored(
    deployer: Deployer, store: SqlStore
) -> None:
    with pytest.raises(BuildError):
        await deployer.deploy("resize", config(), b"not a zip")

    assert await store.list_functions() == []


async def test_a_spec_for_code_missing_on_this_node_says_so(
    store: SqlStore, tmp_path: Path
) -> None:
    await Deployer(store, ArtifactStore(tmp_path / "a")).deploy("resize", config(), code(tmp_path))
    elsewhere = Deployer(store, ArtifactStore(tmp_path / "b"))

    with pytest.raises(NotFoundError, match="is not on this node"):
        elsewhere.spec_for(await store.resolve("resize"))
