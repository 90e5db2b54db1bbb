"""A node on a real small filesystem that fills up: it refuses new events below its
threshold while leases and acknowledgements go on, takes events again when space
returns, and starts on a full disk, saying why it is not ready.

The filesystem is a tmpfs of a few MB the test mounts: that needs root. Where mounting
is not allowed the tests skip; under ``CI`` as root they fail instead."""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from triggerfish.api.app import create_asgi
from triggerfish.api.health import Readiness
from triggerfish.config import Settings
from triggerfish.node import Node

EVENT = {"specversion": "1.0", "source": "tests", "type": "t", "data": {"n": 1}}
CE_JSON = {"content-type": "application/cloudevents+json"}
SIZE = "8m"  # the default threshold is then 5% of it, some 400 KB


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small-disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SIZE}", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        reason = f"cannot mount a tmpfs here: {done.stderr.strip()}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def free(path: Path) -> int:
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize


def fill(path: Path, *, leave: int = 0) -> Path:
    """A file that takes the free space of ``path``'s filesystem but ``leave`` bytes."""
    filler = path / "filler"
    with filler.open("wb") as out:
        for chunk in (1 << 16, 1 << 12):
            while free(path) - chunk >= leave:
                try:
                    out.write(b"\0" * chunk)
                    out.flush()
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    return filler


@contextlib.asynccontextmanager
async def serving(data: Path) -> AsyncIterator[tuple[Node, httpx.AsyncClient]]:
    node = Node(Settings(data_dir=data, shutdown_grace=1.0, sandbox=False))
    node.disk.interval = 0.0  # every check reads the disk: the test fills and empties it
    await node.start()
    try:
        asgi = create_asgi(node, manage_node=False)
        asgi.app.state.readiness = Readiness(node, ttl=0.0)  # type: ignore[attr-defined]
        transport = httpx.ASGITransport(app=asgi)
        token = node.admin_token or (data / "admin.token").read_text().strip()
        headers = {"authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://127.0.0.1", headers=headers
        ) as client:
            yield node, client
    finally:
        await node.stop()


def no_path(response: httpx.Response, where: Path) -> None:
    text = response.text + json.dumps(dict(response.headers))
    assert str(where) not in text, text
    assert "small-disk" not in text, text


async def test_low_disk_refuses_new_events_and_lets_accepted_work_finish(
    small_disk: Path,
) -> None:
    async with serving(small_disk / "data") as (node, api):
        assert (await api.put("/v1/topics/jobs", json={})).status_code == 200
        await node.bus.subscribe("jobs", "worker", start="earliest")
        for n in range(3):
            sent = await api.post(
                "/v1/topics/jobs/events", json={**EVENT, "id": str(n)}, headers=CE_JSON
            )
            assert sent.status_code < 300, sent.text
        assert (await api.get("/readyz")).status_code == 200

        filler = fill(small_disk, leave=128 * 1024)
        ready = await api.get("/readyz")
        assert ready.status_code == 503
        assert int(ready.headers["retry-after"]) >= 1
        assert any("low disk space" in reason for reason in ready.json()["reasons"])
        refused = await api.post(
            "/v1/topics/jobs/events", json={**EVENT, "id": "x"}, headers=CE_JSON
        )
        assert refused.status_code == 503
        assert int(refused.headers["retry-after"]) >= 1
        assert "low on disk space" in refused.json()["detail"]
        no_path(refused, small_disk)

        # What was accepted is still leased and acknowledged.
        leased = await node.bus.fetch("jobs", "worker", max_count=10, lease=30.0, wait=1.0)
        assert sorted(d.event.id for d in leased) == ["0", "1", "2"]
        await node.bus.ack("jobs", "worker", [d.offset for d in leased])
        assert (await node.bus.groups("jobs"))[0].in_flight == 0

        filler.unlink()  # space returns: work resumes by itself
        assert (await api.get("/readyz")).status_code == 200
        again = await api.post("/v1/topics/jobs/events", json={**EVENT, "id": "y"}, headers=CE_JSON)
        assert again.status_code < 300, again.text


async def three_orders(api: httpx.AsyncClient) -> None:
    """Topic ``orders`` with three events on it."""
    assert (await api.put("/v1/topics/orders", json={})).status_code == 200
    for n in range(3):
        sent = await api.post(
            "/v1/topics/orders/events", json={**EVENT, "id": str(n)}, headers=CE_JSON
        )
        assert sent.status_code < 300, sent.text


async def test_a_node_starts_on_a_full_disk_and_says_why_it_is_not_ready(
    small_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = small_disk / "data"
    async with serving(data) as (_node, api):
        await three_orders(api)
        fill(small_disk)  # the disk fills up under the running node, which then stops
    assert free(small_disk) < 64 * 1024

    caplog.set_level(logging.WARNING, logger="triggerfish")
    async with serving(data) as (_node, api):
        said = [r for r in caplog.records if r.name == "triggerfish.disk"]
        assert len(said) == 1, said  # one line says what is wrong
        assert "low on space" in said[0].getMessage()
        ready = await api.get("/readyz")
        assert ready.status_code == 503
        assert any("low disk space" in reason for reason in ready.json()["reasons"])
        no_path(ready, small_disk)
        # Reads are served.
        topic = await api.get("/v1/topics/orders")
        assert topic.status_code == 200, topic.text
        assert topic.json()["count"] == 3


async def test_a_node_stopped_cleanly_starts_on_a_disk_full_to_the_last_byte(
    small_disk: Path,
) -> None:
    data = small_disk / "data"
    async with serving(data) as (_node, api):
        await three_orders(api)
    # A clean stop: every change is in the database files and no WAL is left behind.
    assert not (data / "bus.db-wal").exists()
    assert not (data / "store.db-wal").exists()
    filler = fill(small_disk)
    assert free(small_disk) == 0

    async with serving(data) as (_node, api):
        ready = await api.get("/readyz")
        assert ready.status_code == 503
        assert any("low disk space" in reason for reason in ready.json()["reasons"])
        no_path(ready, small_disk)
        topic = await api.get("/v1/topics/orders")
        assert topic.status_code == 200, topic.text
        assert topic.json()["count"] == 3
        assert (await api.get("/v1/functions")).status_code == 200

        filler.unlink()  # space returns: the same node takes events, no restart
        assert (await api.get("/readyz")).status_code == 200
        sent = await api.post(
            "/v1/topics/orders/events", json={**EVENT, "id": "3"}, headers=CE_JSON
        )
        assert sent.status_code < 300, sent.text
        assert (await api.get("/v1/topics/orders")).json()["count"] == 4
