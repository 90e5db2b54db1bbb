"""The sandbox's pieces on this machine: reachability, the data directory's modes, and
cells (cgroups) with their limits, kill and removal."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from triggerfish.runtime.sandbox import Sandbox, lock_data_dir, reachable


def test_a_folder_closed_to_others_is_not_reachable_below() -> None:
    top = Path(tempfile.mkdtemp())  # in /tmp, which everyone may pass
    try:
        os.chmod(top, 0o755)
        closed = top / "closed"
        (closed / "inner").mkdir(parents=True)
        os.chmod(closed, 0o700)
        assert not reachable(closed / "inner")
        os.chmod(closed, 0o711)
        assert reachable(closed / "inner")
    finally:
        shutil.rmtree(top)


def test_the_data_directory_is_locked_but_for_the_open_folders(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "sandbox").mkdir(parents=True)
    (data / "artifacts").mkdir()
    (data / "store.db").write_text("")
    lock_data_dir(data, open_folders=("sandbox",))
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in [data, *data.iterdir()]}
    assert modes == {"data": 0o711, "sandbox": 0o711, "artifacts": 0o700, "store.db": 0o600}


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    if os.geteuid() != 0:
        pytest.skip("cgroups are the root user's to make")
    made = Sandbox(tmp_path / "data", f"unit{os.getpid()}")
    made.start()
    if not made.confines:
        pytest.skip(f"this machine gives no cgroups: {made.level}")
    return made


def test_a_cell_carries_the_function_s_limits(sandbox: Sandbox) -> None:
    cell = sandbox.cell("f", 128, None)
    assert cell is not None
    try:
        limits = {}
        for folder in cell.folders:
            for name in ("memory.limit_in_bytes", "memory.max", "pids.max"):
                if (folder / name).exists():
                    limits[name] = int((folder / name).read_text())
        memory = limits.get("memory.limit_in_bytes", limits.get("memory.max"))
        assert memory is not None
        assert 128 * 2**20 <= memory <= 160 * 2**20
        assert limits["pids.max"] == sandbox.max_processes
    finally:
        assert cell.remove()
    assert not any(folder.exists() for folder in cell.folders)


def test_killing_a_cell_ends_every_process_in_it(sandbox: Sandbox) -> None:
    cell = sandbox.cell("f", 128, None)
    assert cell is not None
    # A process in a session of its own, and its child: a process-group kill misses
    # neither here, but the cell's kill must not depend on groups at all. The parent goes
    # on when its child ends, so that only the kill ends it, whichever process of the
    # cell (killed one by one without cgroup.kill) the kill reaches first.
    parent = subprocess.Popen(
        ["sh", "-c", "read go; setsid sleep 60 & sleep 60; sleep 60"],
        stdin=subprocess.PIPE,
        start_new_session=True,
    )
    cell.adopt(parent.pid)
    assert parent.stdin is not None
    parent.stdin.write(b"go\n")
    parent.stdin.close()
    deadline = time.monotonic() + 5
    while len(cell.pids()) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(cell.pids()) >= 2
    assert cell.remove()
    parent.wait(5)
    assert parent.returncode == -9


def test_a_closed_sandbox_leaves_no_cgroup_behind(sandbox: Sandbox) -> None:
    cell = sandbox.cell("f", 128, None)
    assert cell is not None
    bases = {folder.parent for folder in cell.folders}
    sandbox.close()  # a cell left over (a node killed mid-way) goes with it
    assert not any(base.exists() for base in bases)
