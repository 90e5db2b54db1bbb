"""A node whose NATS server goes away while it runs: ingest answers 503 with
Retry-After instead of losing anything, and the node recovers by itself when the server
is back: ingest accepts again and triggers deliver again."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.projects import write_project
from support.server import Server, wait_for
from support.services import free_port, in_ci

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

LEDGER = """
import os

def handler(event, context):
    with open(os.environ["LEDGER"], "a") as out:
        out.write(event["id"] + "\\n")
"""


class NatsServer:
    """A NATS server with JetStream of this test's own, on a free port."""

    def __init__(self, folder: Path) -> None:
        binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
        if not Path(binary).exists():
            message = "nats-server is not installed"
            if in_ci():
                pytest.fail(message + "; CI must install it (scripts/services.sh)")
            pytest.skip(message)
        self.binary = binary
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.folder)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "jetstream")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def publish(node: Server, event_id: str) -> httpx.Response:
    with node.client(timeout=15) as api:
        return api.post(
            "/v1/topics/orders/events",
            json={"specversion": "1.0", "id": event_id, "source": "/t", "type": "t"},
            headers={"content-type": "application/cloudevents+json"},
        )


def test_ingest_answers_503_while_the_bus_is_away_and_recovers(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.txt"
    manifest = write_project(
        tmp_path / "project",
        {"keep": (LEDGER, {"environment": {"LEDGER": str(ledger)}, "timeout": 60,
                           "triggers": [{"topic": "orders"}]})},
        topics={"orders": {}},
    )  # fmt: skip
    # A lease here is 90 s (the timeout plus the lease margin): an event handed to a
    # pull request the node gave up during the outage would wait that long, far past
    # the waits below.
    node = Server(
        tmp_path / "data", env={"TRIGGERFISH_BUS": f"nats://127.0.0.1:{nats_server.port}"}
    )
    try:
        wait_for(lambda: _listening(nats_server.port), what="the NATS server")
        node.start("--deploy", str(manifest))
        assert publish(node, "before").status_code == 202
        wait_for(lambda: ledger.exists() and "before" in ledger.read_text(), what="first event")

        nats_server.stop()
        accepted = ["before"]
        tries = iter(range(10_000))

        def refused() -> httpx.Response | None:
            event_id = f"during-{next(tries)}"
            answer = publish(node, event_id)
            if answer.status_code == 202:  # before the node saw the server go
                accepted.append(event_id)
                return None
            return answer

        answer = wait_for(refused, what="a refusal")
        assert answer.status_code == 503
        assert answer.headers["retry-after"] == "1"
        assert "NATS" in answer.json()["detail"] or "bus" in answer.json()["detail"]

        nats_server.start()
        wait_for(
            lambda: publish(node, "after").status_code == 202, timeout=30, interval=0.5,
            what="ingest accepted again",
        )  # fmt: skip
        accepted.append("after")
        wait_for(
            lambda: set(accepted) <= set(ledger.read_text().split()),
            timeout=20,
            what=f"every accepted event handled: {accepted}",
        )
        assert node.process is not None
        assert node.process.poll() is None
    finally:
        node.stop()


def _listening(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False
