"""Per-function environments: built once per requirement set with uv, isolated from the
server's packages, and a failed build never becomes a live version."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from triggerfish.errors import BuildError, NotFoundError
from triggerfish.functions import ArtifactStore, Deployer, FunctionConfig, pack_directory
from triggerfish.functions.build import Builder
from triggerfish.store import SqlStore

# A small pure-Python package that the server itself does not depend on.
PACKAGE = "tabulate"
MISSING = "triggerfish-no-such-package-4e1d"


def code(root: Path, name: str, requirements: str | None, body: str = "") -> Path:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "main.py").write_text(body or "def handler(event, context):\n    return 1\n")
    if requirements is not None:
        (folder / "requirements.txt").write_text(requirements)
    return folder


def run(python: str, source: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [python, "-c", source], capture_output=True, text=True, timeout=60, env={"PATH": "/bin"}
    )


@pytest.fixture
def builder(tmp_path: Path) -> Builder:
    return Builder(tmp_path / "envs")


def test_code_without_requirements_needs_no_environment(builder: Builder, tmp_path: Path) -> None:
    folder = code(tmp_path, "plain", None)
    (folder / "pyproject.toml").write_text("[tool.ruff]\nline-length = 100\n")

    assert builder.requirements(folder) is None
    assert builder.python_for(folder) is None


def test_key_follows_the_requirements_not_the_code(builder: Builder, tmp_path: Path) -> None:
    one = code(tmp_path, "one", f"{PACKAGE}\n", body="def handler(e, c):\n    return 1\n")
    two = code(tmp_path, "two", f"{PACKAGE}\n", body="def handler(e, c):\n    return 2\n")
    three = code(tmp_path, "three", f"{PACKAGE}==0.9.0\n")

    def key(folder: Path, of: Builder = builder) -> str | None:
        wanted = of.requirements(folder)
        return None if wanted is None else wanted.key

    assert key(one) is not None
    assert key(one) == key(two)
    assert key(three) != key(one)
    other_python = Builder(tmp_path / "envs", interpreter="/opt/python9/bin/python")
    assert key(one, other_python) != key(one)


def test_pyproject_dependencies_count_as_requirements(builder: Builder, tmp_path: Path) -> None:
    folder = code(tmp_path, "proj", None)
    (folder / "pyproject.toml").write_text(
        f'[project]\nname = "proj"\nversion = "1"\ndependencies = ["{PACKAGE}"]\n'
    )
    wanted = builder.requirements(folder)
    assert wanted is not None
    assert wanted.file.name == "pyproject.toml"


async def test_build_installs_then_reuses_the_environment(builder: Builder, tmp_path: Path) -> None:
    folder = code(tmp_path, "fn", f"{PACKAGE}\n")

    first = await builder.ensure(folder, function="fn")
    second = await builder.ensure(code(tmp_path, "fn2", f"{PACKAGE}\n"), function="fn2")

    assert first is not None
    assert second is not None
    assert not first.cached
    assert second.cached
    assert second.key == first.key
    log, end = builder.read_log(first.key)
    assert f"+ {PACKAGE}==" in log
    assert end == first.log_path.stat().st_size
    state = builder.state("fn2")
    assert state is not None
    assert state.status == "cached"
    python = builder.python_for(folder)
    assert python == first.python
    probe = run(python, f"import {PACKAGE}, triggerfish.runtime.python.bootstrap; print('ok')")
    assert probe.stdout.strip() == "ok", probe.stderr


async def test_environment_does_not_see_the_servers_packages(
    builder: Builder, tmp_path: Path
) -> None:
    built = await builder.ensure(code(tmp_path, "fn", f"{PACKAGE}\n"))
    assert built is not None

    probe = run(built.python, "import fastapi")

    assert probe.returncode != 0
    assert "No module named 'fastapi'" in probe.stderr


async def test_failed_build_raises_the_installers_message_and_leaves_nothing(
    builder: Builder, tmp_path: Path
) -> None:
    folder = code(tmp_path, "bad", f"{MISSING}==1.0\n")

    with pytest.raises(BuildError) as caught:
        await builder.ensure(folder, function="bad")

    assert MISSING in str(caught.value)
    assert "not found in the package registry" in str(caught.value)
    wanted = builder.requirements(folder)
    assert wanted is not None
    assert not builder.env_path(wanted.key).exists()
    state = builder.state("bad")
    assert state is not None
    assert state.status == "failed"
    assert "build failed" in builder.read_log(wanted.key)[0]
    with pytest.raises(NotFoundError, match="not installed on this node"):
        builder.python_for(folder)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    async with SqlStore(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}") as opened:
        yield opened


async def test_deploy_builds_before_storing_and_a_failed_build_keeps_live(
    store: SqlStore, builder: Builder, tmp_path: Path
) -> None:
    deployer = Deployer(store, ArtifactStore(tmp_path / "artifacts"), builder=builder)
    config = FunctionConfig.model_validate({"handler": "main.handler"})
    good = pack_directory(code(tmp_path, "good", f"{PACKAGE}\n"))

    first = await deployer.deploy("fn", config, good)
    with pytest.raises(BuildError, match=MISSING):
        await deployer.deploy("fn", config, pack_directory(code(tmp_path, "bad", MISSING)))

    assert first.build is not None
    assert not first.build.cached
    live = await store.resolve("fn")
    assert live.version == first.version
    assert [v.number for v in await store.list_versions("fn")] == [1]
    assert deployer.spec_for(live).python == first.build.python
    again = await deployer.deploy("fn", config, good)
    assert again.build is not None
    assert again.build.cached
    assert not again.created


async def test_functions_without_requirements_run_on_the_servers_python(
    store: SqlStore, builder: Builder, tmp_path: Path
) -> None:
    deployer = Deployer(store, ArtifactStore(tmp_path / "artifacts"), builder=builder)
    config = FunctionConfig.model_validate({"handler": "main.handler"})

    result = await deployer.deploy("plain", config, pack_directory(code(tmp_path, "p", None)))

    assert result.build is None
    assert deployer.spec_for(await store.resolve("plain")).python is None
