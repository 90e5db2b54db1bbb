"""examples/shop, written with `App`, passes its own tests as a user runs them: `pytest`
in its folder, without a server; and `triggerfish deploy app.py` serves it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from support.server import Server, wait_for

SHOP = Path(__file__).resolve().parents[2] / "examples" / "shop"


def test_the_examples_own_tests_pass_without_a_server() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=SHOP,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 passed" in done.stdout


def test_deployed_it_accepts_and_ships_an_order(tmp_path: Path) -> None:
    server = Server(tmp_path / "data").start()
    try:
        server.cli("deploy", str(SHOP / "app.py"), check=True)
        order = {"id": "A-1", "customer": "ada", "items": [{"sku": "fin", "price": 12.5}]}
        server.cli(
            "publish", "orders", "--type", "order.created", "--source", "shop",
            "--data", json.dumps(order), check=True,
        )  # fmt: skip
        wait_for(
            lambda: "shipping order A-1 to ada" in server.cli("logs", "ship").stdout,
            what="ship's log line",
        )
        with server.client() as api:
            page = api.get("/v1/invocations", params={"function": "accept"}).json()
        assert [r["status"] for r in page["invocations"]] == ["ok"]
    finally:
        server.stop()
