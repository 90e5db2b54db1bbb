"""`triggerfish up` with a store or bus it cannot reach stops at once, with one line that
names the URL and the reason, and without a password in it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from support.server import ROOT
from support.services import free_port

pytestmark = pytest.mark.e2e


def up(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "triggerfish", "up", "--data-dir", str(tmp_path / "data"),
         "--port", str(free_port()), *args],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip


def test_an_unreachable_store_is_named(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    done = up(tmp_path, "--store", f"postgresql://tf:hunter2@127.0.0.1:{port}/tf")
    assert done.returncode != 0
    message = " ".join(done.stderr.split())
    assert f"cannot reach the store at postgresql://tf:***@127.0.0.1:{port}/tf" in message
    assert "hunter2" not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


def test_an_unreachable_bus_is_named(tmp_path: Path) -> None:
    port = free_port()
    done = up(tmp_path, "--bus", f"nats://127.0.0.1:{port}")
    assert done.returncode != 0
    message = " ".join(done.stderr.split())
    assert f"cannot reach the bus at nats://127.0.0.1:{port}" in message
    assert "Traceback" not in done.stderr


def test_a_bus_url_of_an_unknown_kind_says_what_is_expected(tmp_path: Path) -> None:
    done = up(tmp_path, "--bus", "kafka://broker:9092")
    assert done.returncode == 2
    assert "nats://host:4222" in " ".join(done.stderr.split())
