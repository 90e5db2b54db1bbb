"""Brokers, emits and destinations through a running server: ``triggerfish deploy``
puts the manifest's brokers (with ``${VAR}`` from the server's environment), an async
invocation's success record reaches Redis, and events waiting for a broker survive a
kill -9 of the server."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.projects import write_project
from support.server import Server
from support.services import require_port

pytestmark = pytest.mark.e2e

HOST = "127.0.0.1"
EMITTER = """
import json, os

def handler(event, context):
    for target in json.loads(os.environ.get("TARGETS", "[]")):
        context.emit(target, "thing.done", event)
    return {"ok": True}
"""


def project(root: Path, brokers: dict[str, Any], **settings: Any) -> Path:
    path = write_project(root, {"worker": (EMITTER, settings)})
    document = yaml.safe_load(path.read_text())
    document["brokers"] = brokers
    path.write_text(yaml.safe_dump(document))
    return path


def until(predicate: Any, what: str, within: float = 30.0) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def stream_entries(name: str) -> list[dict[str, bytes]]:
    import redis

    client = redis.Redis(host=HOST, port=6379)
    try:
        return [{k.decode(): v for k, v in f.items()} for _id, f in client.xrange(name)]
    finally:
        client.close()


def test_deploy_puts_brokers_and_destinations_reach_redis(tmp_path: Path) -> None:
    require_port(HOST, 6379, "Redis")
    stream = f"tf{uuid.uuid4().hex[:12]}"
    manifest = project(
        tmp_path / "project",
        {"out": {"kind": "redis", "url": "redis://${SINK_HOST}:6379/0"}},
        destinations={"on_success": f"out:{stream}"},
    )
    server = Server(tmp_path / "data", env={"SINK_HOST": HOST}).start()
    try:
        server.cli("deploy", str(manifest), check=True)
        with server.client() as api:
            response = api.post("/v1/functions/worker/invoke?mode=async", json={"n": 5})
            assert response.status_code == 202, response.text
            (entry,) = until(lambda: stream_entries(stream), "the success record")
            record = json.loads(entry["data"])
            assert entry["ce-type"] == b"triggerfish.invocation.success"
            assert record["requestPayload"] == {"n": 5}
            assert record["responsePayload"] == {"ok": True}
            (broker,) = api.get("/v1/brokers").json()["brokers"]
            assert broker["name"] == "out"
            assert broker["stats"]["published"] == 1
            assert broker["stats"]["url"] == "redis://${SINK_HOST}:6379/0"
    finally:
        server.stop()
        import redis

        redis.Redis(host=HOST, port=6379).delete(stream)


def test_a_deploy_with_a_missing_variable_is_refused(tmp_path: Path) -> None:
    manifest = project(
        tmp_path / "project", {"out": {"kind": "redis", "url": "redis://${NOT_SET_ANYWHERE}/0"}}
    )
    server = Server(tmp_path / "data").start()
    try:
        result = server.cli("deploy", str(manifest))
        assert result.returncode != 0
        said = " ".join((result.stdout + result.stderr).split())
        assert "brokers.out.url: ${NOT_SET_ANYWHERE}: the server's environment variable" in said
    finally:
        server.stop()


def test_emits_waiting_for_a_broker_survive_kill_9(tmp_path: Path) -> None:
    require_port(HOST, 4222, "NATS")
    import nats

    name = f"tf{uuid.uuid4().hex[:12]}"
    manifest = project(
        tmp_path / "project",
        {"js": {"kind": "jetstream", "url": f"nats://{HOST}:4222", "backoff": 0.2}},
        environment={"TARGETS": json.dumps([f"js:{name}.done"])},
    )
    server = Server(tmp_path / "data").start()
    server.cli("deploy", str(manifest), check=True)
    with server.client() as api:
        for n in range(5):
            response = api.post("/v1/functions/worker/invoke?mode=async", json={"n": n})
            assert response.status_code == 202, response.text

        def failing() -> bool:
            (broker,) = api.get("/v1/brokers").json()["brokers"]
            return bool(broker["stats"] and broker["stats"]["failures"] >= 1)

        until(failing, "a failed publish (no stream yet)")

        # Every call ran and its emit waits for the broker: a call still running at the
        # kill would run again after the restart, emitting its message a second time.
        def all_ran() -> bool:
            params = {"function": "worker", "limit": 50}
            found = api.get("/v1/invocations", params=params).json()["invocations"]
            return sum(item["status"] == "ok" for item in found) == 5

        until(all_ran, "the five calls to end")
    server.kill9()

    async def make_stream() -> None:
        nc = await nats.connect(f"nats://{HOST}:4222")
        await nc.jetstream().add_stream(name=name, subjects=[f"{name}.>"])
        await nc.close()

    async def stored() -> list[Any]:
        nc = await nats.connect(f"nats://{HOST}:4222")
        js = nc.jetstream()
        info = await js.stream_info(name)
        out = [await js.get_msg(name, s) for s in range(1, info.state.last_seq + 1)]
        await nc.close()
        return out

    asyncio.run(make_stream())
    server.start()
    try:
        # Leases of the killed server run out (30 s at most), then the relay sends them.
        until(lambda: len(asyncio.run(stored())) >= 5, "all five messages", within=60)
        messages = asyncio.run(stored())
        assert sorted(json.loads(m.data)["n"] for m in messages) == [0, 1, 2, 3, 4]
        assert len({m.headers["Nats-Msg-Id"] for m in messages}) == 5
    finally:
        server.stop()

        async def drop() -> None:
            nc = await nats.connect(f"nats://{HOST}:4222")
            await nc.jetstream().delete_stream(name)
            await nc.close()

        asyncio.run(drop())
