"""The README's path: `triggerfish up --deploy examples/orders`, then drive it."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from support.server import ROOT, Server, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def server(tmp_path: Path):
    server = Server(tmp_path / "data").start("--deploy", str(ROOT / "examples" / "orders"))
    yield server
    server.stop()


def test_first_start_creates_a_private_admin_token_printed_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = Server(data).start()
    first.stop()
    token_file = data / "admin.token"
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    token = token_file.read_text().strip()
    assert token in first.output()

    second = Server(data)
    second.log_path = tmp_path / "second.log"
    second.start()
    second.stop()
    assert token not in second.output()
    assert token_file.read_text().strip() == token


def test_order_flows_through_both_functions(server: Server) -> None:
    order = {"id": "A-1", "customer": "ada", "items": [{"price": 12.5, "quantity": 2}]}
    published = server.cli(
        "publish",
        "orders",
        "--type",
        "order.created",
        "--source",
        "shop",
        "--data",
        json.dumps(order),
        "--id",
        "evt-1",
        "--json",
        check=True,
    )
    assert json.loads(published.stdout)["accepted"][0]["duplicate"] is False

    def shipped() -> list[dict[str, object]]:
        out = server.cli("invocations", "--function", "fulfil", "--json", check=True)
        return [r for r in json.loads(out.stdout) if r["status"] == "ok"]

    (record,) = wait_for(shipped, what="fulfil to run")
    with server.client() as api:
        full = api.get(f"/v1/invocations/{record['id']}").json()
    assert "shipping order A-1 (total 25.0) for ada" in full["logs"]
    assert "correlation id: evt-1" in full["logs"]
    assert full["logs"].startswith("START RequestId:")
    assert "REPORT RequestId:" in full["logs"]

    logs = server.cli("logs", "fulfil", check=True)
    assert "shipping order A-1" in logs.stdout


def test_up_with_deploy_prints_how_to_drive_the_example(server: Server) -> None:
    output = server.output()
    assert "deployed validate" in output
    assert "triggerfish publish orders --type order.created" in output


def test_publishing_the_same_event_twice_stores_it_once(server: Server) -> None:
    args = (
        "publish",
        "orders",
        "--type",
        "order.rejected",
        "--source",
        "shop",
        "--id",
        "dup-1",
        "--data",
        "{}",
    )
    server.cli(*args, check=True)
    again = server.cli(*args, check=True)
    assert "duplicate" in again.stdout
    with server.client() as api:
        events = api.get("/v1/topics/orders/events").json()["events"]
    assert [e["event"]["id"] for e in events].count("dup-1") == 1


def test_cli_says_clearly_when_no_server_runs(tmp_path: Path) -> None:
    server = Server(tmp_path / "nothing")
    result = server.cli("ls")  # nobody listens on this port
    assert result.returncode == 5
    assert "not running" in result.stderr
    assert "triggerfish up" in result.stderr
