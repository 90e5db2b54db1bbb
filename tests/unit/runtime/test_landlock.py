"""The Landlock fence of a node that is not root: what a fenced process can and cannot
touch (the kernel's answer, in a forked child)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from triggerfish.runtime import landlock
from triggerfish.runtime.protocol import Confinement
from triggerfish.runtime.sandbox import _fence_folders, fenced_argv

pytestmark = pytest.mark.skipif(landlock.abi() < 1, reason="the kernel offers no Landlock")


def fenced(read: list[str], write: list[str], action: str, path: str) -> str:
    """In a child fenced to ``read`` and ``write``: try ``action`` on ``path``."""
    ours, theirs = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        outcome = "allowed"
        try:
            landlock.restrict(read, write)
            if action == "read":
                Path(path).read_bytes()
            elif action == "write":
                Path(path).write_text("x")
            elif action == "signal":
                os.kill(int(path), 0)
        except OSError as exc:
            outcome = type(exc).__name__
        os.write(theirs, outcome.encode())
        os._exit(0)
    os.close(theirs)
    os.waitpid(pid, 0)
    with os.fdopen(ours, "rb") as answer:
        return answer.read().decode()


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path, Path]:
    readable, writable, closed = tmp_path / "readable", tmp_path / "writable", tmp_path / "closed"
    for folder in (readable, writable, closed):
        folder.mkdir()
        (folder / "file").write_text("secret")
    return readable, writable, closed


def test_a_fenced_process_reads_only_its_folders(folders: tuple[Path, Path, Path]) -> None:
    readable, writable, closed = folders
    read, write = [str(readable)], [str(writable)]
    assert fenced(read, write, "read", str(readable / "file")) == "allowed"
    assert fenced(read, write, "read", str(writable / "file")) == "allowed"
    assert fenced(read, write, "read", str(closed / "file")) == "PermissionError"


def test_a_fenced_process_writes_only_its_write_folders(folders: tuple[Path, Path, Path]) -> None:
    readable, writable, _ = folders
    read, write = [str(readable)], [str(writable)]
    assert fenced(read, write, "write", str(writable / "new")) == "allowed"
    assert fenced(read, write, "write", str(readable / "new")) == "PermissionError"
    assert not (readable / "new").exists()


@pytest.mark.skipif(landlock.abi() < 6, reason="signal scoping needs Landlock ABI 6")
def test_a_fenced_process_cannot_signal_the_one_that_started_it(
    folders: tuple[Path, Path, Path],
) -> None:
    readable, writable, _ = folders
    outcome = fenced([str(readable)], [str(writable)], "signal", str(os.getpid()))
    assert outcome == "PermissionError"


def test_a_program_started_behind_a_fence_stays_behind_it(
    folders: tuple[Path, Path, Path],
) -> None:
    readable, _, closed = folders
    system, _, _ = _fence_folders((closed,), envs=closed / "envs")
    confinement = Confinement(os.getuid(), os.getgid(), [], [*system, str(readable)], [])
    for target, expected in ((readable, 0), (closed, 1)):
        argv = fenced_argv(["cat", str(target / "file")], confinement)
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        assert done.returncode == expected, done.stderr
        if expected:
            assert "Permission denied" in done.stderr


def test_no_fence_leaves_the_program_as_it_is() -> None:
    argv = ["node", "bootstrap.js"]
    assert fenced_argv(argv, None) == argv
    assert fenced_argv(argv, Confinement(0, 0)) == argv


def test_a_system_folder_holding_the_data_directory_is_closed_and_said(tmp_path: Path) -> None:
    data = Path("/tmp") / tmp_path.name / "data"
    read, write, closed = _fence_folders((data,), envs=data / "envs")
    assert "/tmp" not in write
    assert "/tmp" not in read
    assert any(note.startswith("/tmp is closed to functions") for note in closed)
    assert str(data / "envs") in read


def test_nested_folders_are_listed_once(tmp_path: Path) -> None:
    read, _, _ = _fence_folders((tmp_path / "data",), envs=tmp_path / "envs")
    for folder in read[:-1]:
        assert not any(Path(other) in Path(folder).parents for other in read[:-1]), folder
