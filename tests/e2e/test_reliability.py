"""The delivery promise, proved against a real `triggerfish up` process."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from support.projects import write_project
from support.server import Server, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RECORDER = """
import os

def handler(event, context):
    with open(os.environ["OUT"], "a") as out:
        out.write(event["id"] + "\\n")
    return None
"""


def batch(start: int, count: int) -> list[dict[str, object]]:
    return [
        {
            "specversion": "1.0",
            "id": f"e-{i}",
            "source": "load",
            "type": "tick",
            "data": {"n": i, "pad": "x" * 150},
        }
        for i in range(start, start + count)
    ]


def publish(api: httpx.Client, topic: str, events: list[dict[str, object]]) -> None:
    response = api.post(
        f"/v1/topics/{topic}/events",
        content=json.dumps(events),
        headers={"Content-Type": "application/cloudevents-batch+json"},
    )
    assert response.status_code == 202, response.text


def handled(path: Path) -> set[str]:
    return set(path.read_text().split()) if path.exists() else set()


def test_kill_9_while_handling_5000_events_loses_none(tmp_path: Path) -> None:
    out = tmp_path / "handled.txt"
    manifest = write_project(
        tmp_path / "project",
        {
            "record": (
                RECORDER,
                {
                    "environment": {"OUT": str(out)},
                    "max_concurrency": 4,
                    "triggers": [
                        {"topic": "load", "start": "earliest", "retry": {"max_attempts": 50}}
                    ],
                },
            )
        },
        topics={"load": {}},
    )
    data = tmp_path / "data"
    server = Server(data).start("--deploy", str(manifest))
    try:
        with server.client() as api:
            for start in range(0, 5000, 500):
                publish(api, "load", batch(start, 500))
        # Let handling get under way, then kill the server mid-flight.
        wait_for(lambda: len(handled(out)) >= 500, timeout=60, what="handling to start")
        server.kill9()
    finally:
        server.stop()
    before = len(handled(out))
    assert before < 5000, "the kill came too late to prove anything"

    again = Server(data)
    again.log_path = tmp_path / "restart.log"
    again.start()
    try:
        wait_for(
            lambda: len(handled(out)) == 5000,
            timeout=180,
            interval=0.5,
            what="every event handled after the restart",
        )
        assert handled(out) == {f"e-{i}" for i in range(5000)}
        with again.client() as api:
            dead = api.get("/v1/dlq").json()["dead_letters"]
        assert all(d["pending"] == 0 for d in dead)
    finally:
        again.stop()


FLAKY = """
import os

def handler(event, context):
    path = os.path.join(os.environ["STATE"], event["id"])
    tries = int(open(path).read()) if os.path.exists(path) else 0
    with open(path, "w") as f:
        f.write(str(tries + 1))
    if event["data"].get("always_fail") and not os.path.exists(os.environ["FIXED"]):
        raise ValueError("cannot process " + event["id"])
    if tries < 2:
        raise RuntimeError(f"transient failure {tries + 1}")
    return {"tries": tries + 1}
"""


def test_retries_into_success_then_dead_letters_and_redrives(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    fixed = tmp_path / "fixed"
    manifest = write_project(
        tmp_path / "project",
        {
            "flaky": (
                FLAKY,
                {
                    "environment": {"STATE": str(state), "FIXED": str(fixed)},
                    "triggers": [
                        {
                            "topic": "jobs",
                            "retry": {"max_attempts": 3, "backoff": 0.05, "max_backoff": 0.2},
                            "dead_letter": "jobs-failed",
                        }
                    ],
                },
            )
        },
        topics={"jobs": {}},
    )
    server = Server(tmp_path / "data").start("--deploy", str(manifest))
    try:
        with server.client() as api:
            publish(
                api,
                "jobs",
                [
                    {
                        "specversion": "1.0",
                        "id": "ok-later",
                        "source": "t",
                        "type": "job",
                        "data": {},
                    },
                    {
                        "specversion": "1.0",
                        "id": "doomed",
                        "source": "t",
                        "type": "job",
                        "data": {"always_fail": True},
                    },
                ],
            )

            def outcome(event_id: str) -> list[dict[str, object]]:
                page = api.get("/v1/invocations", params={"function": "flaky"}).json()
                return [r for r in page["invocations"] if event_id in r["event_ids"]]

            runs = wait_for(
                lambda: [r for r in outcome("ok-later") if r["status"] == "ok"],
                what="the transient failure to be retried into success",
            )
            assert runs[0]["attempt"] == 3
            assert [r["status"] for r in outcome("ok-later")].count("error") == 2

            def dead_letters() -> list[dict[str, object]]:
                (dlq,) = api.get("/v1/dlq", params={"topic": "jobs-failed"}).json()["dead_letters"]
                return dlq["events"]

            (letter,) = wait_for(dead_letters, what="the doomed event in the dead-letter topic")
            event = letter["event"]
            assert event["id"] == "doomed"
            assert event["errortype"] == "ValueError"
            assert event["errormessage"] == "cannot process doomed"
            assert event["errorattempts"] == 3
            # Records are written a moment after the invocation: wait for the third.
            wait_for(lambda: len(outcome("doomed")) >= 3, what="the records of 3 attempts")
            assert len(outcome("doomed")) == 3

        listed = server.cli("dlq", "list", check=True)
        assert "doomed" in listed.stdout
        assert "ValueError" in listed.stdout

        fixed.write_text("yes")  # the fix: the function now succeeds for it
        redriven = server.cli("dlq", "redrive", "jobs-failed", "--json", check=True)
        assert json.loads(redriven.stdout)["redriven"] == 1
        with server.client() as api:
            wait_for(
                lambda: [r for r in outcome("doomed") if r["status"] == "ok"],
                what="the redriven event to be handled",
            )
            (dlq,) = api.get("/v1/dlq", params={"topic": "jobs-failed"}).json()["dead_letters"]
            assert dlq["pending"] == 0
    finally:
        server.stop()


SLOW = """
import time

def handler(event, context):
    time.sleep(float(event["data"]["sleep"]))
    return "done"
"""


def test_sigterm_lets_invocations_in_flight_finish(tmp_path: Path) -> None:
    manifest = write_project(
        tmp_path / "project",
        {"slow": (SLOW, {"triggers": [{"topic": "work"}]})},
        topics={"work": {}},
    )
    server = Server(tmp_path / "data", env={"TRIGGERFISH_SHUTDOWN_GRACE": "10"})
    server.start("--deploy", str(manifest))
    with server.client() as api:
        publish(
            api,
            "work",
            [
                {
                    "specversion": "1.0",
                    "id": "w1",
                    "source": "t",
                    "type": "w",
                    "data": {"sleep": 1.5},
                }
            ],
        )
        wait_for(
            lambda: any(t["in_flight"] for t in api.get("/v1/triggers").json()["triggers"]),
            what="the invocation to start",
        )
    started = time.monotonic()
    assert server.terminate() == 0
    assert time.monotonic() - started >= 1.0  # it waited for the handler

    again = Server(tmp_path / "data")
    again.log_path = tmp_path / "again.log"
    again.start()
    try:
        with again.client() as api:
            records = api.get("/v1/invocations", params={"function": "slow"}).json()
        assert [r["status"] for r in records["invocations"]] == ["ok"]
        # The event was acknowledged: nothing is delivered again after the restart.
        time.sleep(1.0)
        with again.client() as api:
            triggers = api.get("/v1/triggers", params={"function": "slow"}).json()["triggers"]
        assert all(t["backlog"] == 0 and t["in_flight"] == 0 for t in triggers)
    finally:
        again.stop()


def test_sigterm_past_the_grace_period_returns_the_event_to_the_bus(tmp_path: Path) -> None:
    out = tmp_path / "done.txt"
    source = SLOW.replace(
        'return "done"', 'open(__import__("os").environ["OUT"], "a").write(event["id"] + "\\n")'
    )
    manifest = write_project(
        tmp_path / "project",
        {
            "slow": (
                source,
                {"environment": {"OUT": str(out)}, "timeout": 60, "triggers": [{"topic": "work"}]},
            )
        },
        topics={"work": {}},
    )
    server = Server(tmp_path / "data", env={"TRIGGERFISH_SHUTDOWN_GRACE": "0.5"})
    server.start("--deploy", str(manifest))
    with server.client() as api:
        publish(
            api,
            "work",
            [
                {
                    "specversion": "1.0",
                    "id": "long",
                    "source": "t",
                    "type": "w",
                    "data": {"sleep": 3},
                }
            ],
        )
        wait_for(
            lambda: any(t["in_flight"] for t in api.get("/v1/triggers").json()["triggers"]),
            what="the invocation to start",
        )
    server.terminate()
    assert not out.exists()

    again = Server(tmp_path / "data")
    again.log_path = tmp_path / "again.log"
    again.start()
    try:
        wait_for(lambda: handled(out) == {"long"}, timeout=30, what="redelivery after restart")
    finally:
        again.stop()
