"""A backup taken while a node works restores to a node that serves the same functions,
versions and aliases, delivers the events that were still waiting, and keeps its
buckets, access keys and admin token."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from support.lambda_api import new_key
from support.projects import write_project
from support.s3 import s3_client
from support.server import ROOT, Server, wait_for

pytestmark = pytest.mark.e2e

ECHO = """
def handler(event, context):
    return {{"v": {version}, "got": event}}
"""

# Fails while the gate file is absent: its events stay waiting on the bus, retried.
GATED = """
import os

def handler(event, context):
    if not os.path.exists(os.environ["GATE"]):
        raise RuntimeError("gate closed")
    with open(os.environ["LEDGER"], "a") as out:
        out.write(event["id"] + "\\n")
"""

CLOUDEVENT = {"content-type": "application/cloudevents+json"}


def deploy(server: Server, root: Path, version: int, gate: Path, ledger: Path) -> None:
    retry = {"max_attempts": 1000, "backoff": 0.05, "max_backoff": 0.2}
    manifest = write_project(
        root,
        {
            "echo": (ECHO.format(version=version), {"triggers": [{"topic": "work"}]}),
            "gated": (
                GATED,
                {
                    "environment": {"GATE": str(gate), "LEDGER": str(ledger)},
                    "triggers": [{"topic": "held", "batch_size": 1, "retry": retry}],
                },
            ),
        },
    )
    server.cli("deploy", str(manifest), check=True)


def publish(api: httpx.Client, topic: str, event_id: str) -> None:
    event = {"specversion": "1.0", "id": event_id, "source": "/backup-test", "type": "t"}
    response = api.post(f"/v1/topics/{topic}/events", json=event, headers=CLOUDEVENT)
    assert response.is_success, response.text


def invoke(server: Server, qualifier: str) -> int:
    with server.client() as api:
        response = api.post(f"/v1/functions/echo/invoke?qualifier={qualifier}", json={"x": 1})
    assert response.is_success, response.text
    return int(response.json()["v"])


def test_a_backup_under_load_restores_to_a_node_that_carries_on(tmp_path: Path) -> None:
    gate, ledger = tmp_path / "gate", tmp_path / "ledger.txt"
    first = Server(tmp_path / "first").start()
    try:
        deploy(first, tmp_path / "project", 1, gate, ledger)
        deploy(first, tmp_path / "project", 2, gate, ledger)
        with first.client() as api:
            moved = api.put("/v1/functions/echo/aliases/stable", json={"version": 1})
            assert moved.status_code in (200, 201), moved.text
            before = api.get("/v1/functions/echo").json()
            held = [f"held-{n}" for n in range(12)]
            for event_id in held:
                publish(api, "held", event_id)
        key = new_key(first)
        s3 = s3_client(first, key)
        s3.create_bucket(Bucket="kept")
        for n in range(5):
            s3.put_object(Bucket="kept", Key=f"obj-{n}", Body=f"body {n}".encode() * 100)

        # Events keep arriving and being handled while the backup is taken.
        stop = threading.Event()
        published: list[str] = []

        def load() -> None:
            with first.client() as api:
                while not stop.is_set():
                    publish(api, "work", f"work-{len(published)}")
                    published.append(f"work-{len(published)}")
                    s3.put_object(Bucket="kept", Key="churn", Body=str(len(published)).encode())

        worker = threading.Thread(target=load)
        worker.start()
        try:
            wait_for(lambda: len(published) > 20, what="load to start")
            backup = first.cli("backup", str(tmp_path / "backup"), "--json", check=True)
            wait_for(lambda: len(published) > 40, what="load to go on after the backup")
        finally:
            stop.set()
            worker.join(30)
        made = json.loads(backup.stdout)
        with first.client() as api:
            again = api.post("/v1/backup", json={"path": str(tmp_path / "backup")})
            assert again.status_code == 409, again.text
            assert "not an empty folder" in again.json()["detail"]
            relative = api.post("/v1/backup", json={"path": "backups/today"})
            assert relative.status_code == 400, relative.text
        anonymous = httpx.post(f"{first.url}/v1/backup", json={"path": str(tmp_path / "b2")})
        assert anonymous.status_code == 401
        assert made["not_copied"] == []
        assert {"store.db", "bus.db", "buckets/index.db", "admin.token"} <= {
            f["path"] for f in made["files"]
        }
        token = first.token
    finally:
        first.stop()
    assert not ledger.exists(), "the gated events must still be waiting at backup time"

    restored_dir = tmp_path / "restored"
    restored = subprocess.run(
        [
            sys.executable,
            "-m",
            "triggerfish",
            "restore",
            str(tmp_path / "backup"),
            "--data-dir",
            str(restored_dir),
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert restored.returncode == 0, restored.stderr
    counts = json.loads(restored.stdout)["counts"]
    assert counts["functions"] == 2
    assert counts["versions"] == 3
    assert counts["events waiting"] >= len(held)

    gate.touch()
    second = Server(restored_dir).start()
    try:
        assert second.token == token
        with second.client() as api:
            assert api.get("/v1/functions/echo").json()["versions"] == before["versions"]
        assert invoke(second, "stable") == 1
        assert invoke(second, "live") == 2
        waited = wait_for(
            lambda: ledger.exists() and set(held) <= set(ledger.read_text().split()),
            what="the waiting events to be delivered by the restored node",
        )
        assert waited
        s3 = s3_client(second, key)
        for n in range(5):
            body = s3.get_object(Bucket="kept", Key=f"obj-{n}")["Body"].read()
            assert body == f"body {n}".encode() * 100
        assert s3.get_object(Bucket="kept", Key="churn")["Body"].read().isdigit()
    finally:
        second.stop()
