"""Suspended durable executions hold nothing, and survive the node: a thousand of them
waiting leave no environment running and all complete when their timers fire; a node
killed with ``kill -9`` during a wait completes the execution after its restart, each
step's side effect done once."""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.projects import write_project
from support.server import Server, wait_for

pytest.importorskip("aws_durable_execution_sdk_python")

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

#: A thousand in a full run (``DURABLE_WAITERS=1000``); fewer by default, to keep the
#: suite fast: the property (nothing held while waiting) does not depend on the count.
EXECUTIONS = int(os.environ.get("DURABLE_WAITERS", "250"))

WAITER = """
import os
from aws_durable_execution_sdk_python import DurableContext, durable_execution
from aws_durable_execution_sdk_python.config import Duration

OUT = os.environ["OUT"]


def note(name):
    with open(os.path.join(OUT, name), "a") as out:
        out.write(name + "\\n")


@durable_execution
def handler(event: dict, context: DurableContext) -> dict:
    first = context.step(lambda _: note(f"pack-{event['id']}") or "packed", name="pack")
    context.wait(Duration.from_seconds(event["wait"]), name="cool-down")
    second = context.step(lambda _: note(f"ship-{event['id']}") or "shipped", name="ship")
    return {"id": event["id"], "steps": [first, second]}
"""


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("suspension-out")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, out: Path) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("suspension")
    server = Server(root / "data").start()
    try:
        settings = {
            "durable": {"execution_timeout": "1h", "retention": "1d"},
            "environment": {"OUT": str(out)},
            "max_concurrency": 8,
            "idle_ttl": 1,
        }
        manifest = write_project(root / "project", {"waiter": (WAITER, settings)})
        server.cli("deploy", str(manifest), check=True)
        yield server
    finally:
        server.stop()


def store(server: Server) -> sqlite3.Connection:
    return sqlite3.connect(server.data_dir / "store.db", timeout=10)


def count(server: Server, query: str) -> int:
    with store(server) as db:
        found: int = db.execute(query).fetchone()[0]
    return found


def warm_environments(api: httpx.Client) -> int:
    text = api.get("/metrics").text
    pattern = r'^triggerfish_warm_environments\{function="waiter",[^}]*\} (\S+)$'
    return sum(int(float(value)) for value in re.findall(pattern, text, re.MULTILINE))


def invoke_async(api: httpx.Client, event: dict[str, object]) -> None:
    reply = api.post(
        "/2015-03-31/functions/waiter/invocations",
        content=json.dumps(event),
        headers={"X-Amz-Invocation-Type": "Event"},
    )
    assert reply.status_code == 202, reply.text


def test_many_waiting_executions_hold_no_environment_and_all_complete(
    server: Server, out: Path
) -> None:
    with server.client() as api:
        for number in range(EXECUTIONS):
            invoke_async(api, {"id": f"w-{number}", "wait": 3600})
        waiting = (
            "SELECT count(*) FROM tf_durable_operations WHERE type = 'WAIT' AND status = 'STARTED'"
        )
        wait_for(
            lambda: count(server, waiting) == EXECUTIONS,
            timeout=60,
            what="every execution to wait",
        )
        # Each waits for an hour, and nothing runs for it meanwhile.
        wait_for(lambda: warm_environments(api) == 0, timeout=15, what="environments to end")
        assert (
            count(server, "SELECT count(*) FROM tf_durable_executions WHERE status = 'RUNNING'")
            == EXECUTIONS
        )

    # Move every timer to now, behind the node's back: a node learns of its own writes
    # only, so it starts again and reads its next timer, as after any restart. The
    # leader fires them and the executions resume.
    server.stop()
    with store(server) as db:
        db.execute("UPDATE tf_durable_operations SET due_at = 0 WHERE type = 'WAIT'")
    server.start()
    done = "SELECT count(*) FROM tf_durable_executions WHERE status = 'SUCCEEDED'"
    wait_for(lambda: count(server, done) == EXECUTIONS, timeout=90, what="every execution to end")
    shipped = sorted(path.name for path in out.glob("ship-w-*"))
    assert len(shipped) == EXECUTIONS
    assert all((out / name).read_text().count("\n") == 1 for name in shipped)
    assert all((out / f"pack-w-{n}").read_text().count("\n") == 1 for n in range(EXECUTIONS))


def test_kill_9_during_a_wait_then_restart_completes_the_execution_once(
    server: Server, out: Path
) -> None:
    with server.client() as api:
        reply = api.post("/2015-03-31/functions/waiter/invocations", json={"id": "k-1", "wait": 2})
        started = reply.json()
    assert started["Status"] == "RUNNING", started
    assert (out / "pack-k-1").exists()
    assert not (out / "ship-k-1").exists()

    server.kill9()
    server.start()
    with server.client() as api:
        arn = started["DurableExecutionArn"]

        def ended() -> dict[str, object] | None:
            found = api.get(f"/v1/executions/{arn.rsplit('/', 1)[-1]}").json()
            return found if found["status"] != "RUNNING" else None

        done = wait_for(ended, timeout=30, what="the execution to end")
    assert done["status"] == "SUCCEEDED", done
    assert json.loads(done["result"]) == {"id": "k-1", "steps": ["packed", "shipped"]}
    assert (out / "pack-k-1").read_text().count("\n") == 1
    assert (out / "ship-k-1").read_text().count("\n") == 1
