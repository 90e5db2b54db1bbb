"""``triggerfish init`` in a folder: what it writes, and what it refuses to overwrite."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.cli import run
from triggerfish.cli.init import Runtime, default_name, render
from triggerfish.functions.manifest import load_manifest


@pytest.mark.parametrize("runtime", ["python", "nodejs"])
def test_the_project_is_a_manifest_deploy_accepts(tmp_path: Path, runtime: str) -> None:
    done = run(None, "init", str(tmp_path), "--runtime", runtime, "--name", "totals")
    assert done.code == 0, done.err
    manifest = load_manifest(tmp_path)  # code folder and handler module are there
    (trigger,) = manifest.functions["totals"].triggers
    assert trigger.topic == "orders"
    assert trigger.pattern == {"type": ["order.created"]}
    assert trigger.dead_letter == "orders-failed"
    assert trigger.retry.max_attempts == 3
    readme = (tmp_path / "README.md").read_text()
    assert "triggerfish deploy" in readme
    assert ("pytest" if runtime == "python" else "node --test") in readme


def test_existing_files_are_named_and_nothing_is_written(tmp_path: Path) -> None:
    (tmp_path / "triggerfish.yaml").write_text("# mine\n")
    (tmp_path / "README.md").write_text("mine\n")
    done = run(None, "init", str(tmp_path), "--name", "totals")
    assert done.code == 7
    assert "triggerfish.yaml" in done.err
    assert "README.md" in done.err
    assert "--force" in done.err
    assert (tmp_path / "triggerfish.yaml").read_text() == "# mine\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md", "triggerfish.yaml"]


def test_force_overwrites(tmp_path: Path) -> None:
    (tmp_path / "triggerfish.yaml").write_text("# mine\n")
    done = run(None, "init", str(tmp_path), "--name", "totals", "--force")
    assert done.code == 0, done.err
    assert "totals:" in (tmp_path / "triggerfish.yaml").read_text()


def test_a_name_deploy_would_refuse_is_refused_before_writing(tmp_path: Path) -> None:
    done = run(None, "init", str(tmp_path / "p"), "--name", "Orders!")
    assert done.code == 2
    assert "--name 'Orders!'" in done.err
    assert "lowercase" in done.err
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize(
    ("folder", "name"),
    [("my-shop", "my-shop"), ("My Shop", "my-shop"), ("__", "hello"), ("Été", "t")],
)
def test_the_function_is_named_after_the_folder(tmp_path: Path, folder: str, name: str) -> None:
    assert default_name(tmp_path / folder) == name


def test_a_python_test_module_name_has_no_dashes() -> None:
    assert "tests/test_my_shop.py" in render(Runtime.python, "my-shop")
