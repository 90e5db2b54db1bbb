"""Node.js functions at deploy time: npm packages installed from package.json, cached by
digest and visible to the function; the manifest's rules for Node.js code."""

from __future__ import annotations

import json
import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from triggerfish.errors import BuildError, ConfigError, NotFoundError
from triggerfish.functions.build import Builder
from triggerfish.functions.manifest import load_manifest
from triggerfish.runtime.base import FunctionSpec, InvocationRequest
from triggerfish.runtime.executor import ProcessExecutor

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None, reason="needs Node.js and npm"
)

Request = Callable[..., InvocationRequest]

# A tiny package without dependencies of its own.
PACKAGE = {"name": "uses-is-number", "private": True, "dependencies": {"is-number": "7.0.0"}}
HANDLER = """
const isNumber = require('is-number');
exports.handler = async (event) => ({ checked: isNumber(event.value) });
"""


def code(root: Path, package: dict[str, object] | str = PACKAGE) -> Path:
    root.mkdir(parents=True)
    (root / "index.js").write_text(HANDLER)
    text = package if isinstance(package, str) else json.dumps(package)
    (root / "package.json").write_text(text)
    return root


async def test_packages_are_installed_linked_and_reused(
    tmp_path: Path, executor: ProcessExecutor, make_request: Request
) -> None:
    builder = Builder(tmp_path / "envs")
    first = code(tmp_path / "v1")
    with pytest.raises(NotFoundError, match=r"npm packages .* are not installed"):
        builder.python_for(first)
    built = await builder.ensure(first, function="checker")
    assert built is not None
    assert not built.cached
    assert built.key.startswith("npm-")
    assert "npm install" in built.log_path.read_text()
    assert (first / "node_modules" / "is-number" / "package.json").is_file()

    spec = FunctionSpec("checker", "v1", first, "index.handler", runtime="nodejs")
    result = await executor.invoke(spec, make_request({"value": "42"}))
    assert result.status == "ok", result.logs
    assert orjson.loads(result.result or b"") == {"checked": True}

    # Another version with the same package.json reuses the install.
    second = code(tmp_path / "v2")
    again = await builder.ensure(second, function="checker")
    assert again is not None
    assert again.cached
    assert again.key == built.key
    assert builder.python_for(second) is None  # no Python requirements
    assert (second / "node_modules").resolve() == (first / "node_modules").resolve()


async def test_a_lock_file_means_npm_ci_and_a_new_key(tmp_path: Path) -> None:
    builder = Builder(tmp_path / "envs")
    plain = await builder.ensure(code(tmp_path / "plain"), function="f")
    locked_dir = code(tmp_path / "locked")
    lock = builder.env_path(plain.key if plain else "") / "package-lock.json"
    shutil.copyfile(lock, locked_dir / "package-lock.json")
    locked = await builder.ensure(locked_dir, function="f")
    assert plain is not None
    assert locked is not None
    assert locked.key != plain.key
    assert "npm ci" in locked.log_path.read_text()
    assert (locked_dir / "node_modules" / "is-number").is_dir()


async def test_a_failed_install_fails_with_npms_message_and_keeps_nothing(tmp_path: Path) -> None:
    builder = Builder(tmp_path / "envs")
    broken = code(tmp_path / "broken", '{"name": "broken", "dependencies": {')
    with pytest.raises(BuildError, match="npm install for broken failed") as caught:
        await builder.ensure(broken, function="broken")
    assert "JSON" in str(caught.value)
    wanted = builder.node_requirements(broken)
    assert wanted is not None
    assert not builder.is_built(wanted.key)
    assert "build failed" in builder.log_path(wanted.key).read_text()
    state = builder.state("broken")
    assert state is not None
    assert state.status == "failed"


def _manifest(root: Path, runtime: str, handler: str, files: dict[str, str]) -> Path:
    folder = root / "fn"
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    manifest = root / "triggerfish.yaml"
    manifest.write_text(
        textwrap.dedent(
            f"""
            functions:
              fn:
                handler: {handler}
                runtime: {runtime}
            """
        )
    )
    return manifest


@pytest.mark.parametrize(
    ("runtime", "file"),
    [("nodejs", "index.js"), ("nodejs20.x", "index.mjs"), ("nodejs22.x", "index.cjs")],
)
def test_manifest_finds_node_handler_modules(tmp_path: Path, runtime: str, file: str) -> None:
    manifest = load_manifest(_manifest(tmp_path, runtime, "index.handler", {file: ""}))
    assert manifest.functions["fn"].runtime == runtime


def test_manifest_names_a_missing_node_module(tmp_path: Path) -> None:
    path = _manifest(tmp_path, "nodejs20.x", "index.handler", {"index.py": ""})
    with pytest.raises(ConfigError, match=r"handler module index\.js \(or \.mjs, \.cjs\)"):
        load_manifest(path)


@pytest.mark.parametrize("runtime", ["node", "nodejs20", "ruby3.2", "provided.al1", "java21"])
def test_manifest_lists_the_runtimes_it_knows(tmp_path: Path, runtime: str) -> None:
    path = _manifest(tmp_path, runtime, "index.handler", {"index.js": ""})
    with pytest.raises(ConfigError) as caught:
        load_manifest(path)
    message = str(caught.value)
    assert "functions.fn.runtime" in message
    for name in ('"python"', '"nodejs20.x"', '"provided.al2023"'):
        assert name in message
