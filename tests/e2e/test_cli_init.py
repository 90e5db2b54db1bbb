"""A project made by ``triggerfish init`` passes its own test, deploys to a running
server as it is, and runs for the event its trigger is for."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.cli import run
from support.server import Server

pytestmark = pytest.mark.e2e

ORDER = {"id": "A-1", "items": [{"sku": "pen", "price": 2.5, "quantity": 2}]}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("init") / "data").start()
    yield server
    server.stop()


def invocations_of(server: Server, function: str, deadline: float = 20.0) -> list[Any]:
    """The function's invocations once there is at least one that finished."""
    end = time.monotonic() + deadline
    while True:
        records = run(server, "invocations", "--function", function, "--json").json()
        if any(r["status"] != "running" for r in records) or time.monotonic() > end:
            return list(records)
        time.sleep(0.1)


def test_a_python_project_passes_its_test_deploys_and_runs(server: Server, tmp_path: Path) -> None:
    project = tmp_path / "shop"
    assert run(None, "init", str(project), "--name", "totals").code == 0

    tested = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "3 passed" in tested.stdout

    deployed = run(server, "deploy", str(project), "--json").json()
    assert [f["function"] for f in deployed["functions"]] == ["totals"]
    assert deployed["functions"][0]["triggers_added"] == ["totals.orders"]

    published = run(
        server, "publish", "orders", "--type", "order.created", "--data", json.dumps(ORDER)
    )
    assert published.code == 0, published.err
    (record,) = invocations_of(server, "totals")
    assert record["status"] == "ok", record
    detail = run(server, "invocations", record["id"], "--json").json()
    assert "order A-1: 1 item(s), total 5.00" in detail["logs"]


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_a_nodejs_project_passes_its_test_and_deploys(server: Server, tmp_path: Path) -> None:
    project = tmp_path / "shop-node"
    assert run(None, "init", str(project), "--runtime", "nodejs", "--name", "totals-js").code == 0

    tested = subprocess.run(
        ["node", "--test"], cwd=project, capture_output=True, text=True, timeout=60
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "# pass 1" in tested.stdout

    assert run(server, "deploy", str(project), "--json").code == 0
    event = {"specversion": "1.0", "id": "e-1", "source": "shop", "type": "order.created"}
    invoked = run(server, "invoke", "totals-js", "--data", json.dumps({**event, "data": ORDER}))
    assert invoked.code == 0, invoked.err
    assert json.loads(invoked.out) == {"order": "A-1", "items": 1, "total": 5}
