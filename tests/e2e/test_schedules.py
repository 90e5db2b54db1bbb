"""Schedules against a running server: one firing per slot across a restart, and
missed slots caught up after downtime."""

from __future__ import annotations

import itertools
import json
import time
from datetime import datetime
from pathlib import Path

import pytest

from support.projects import write_project
from support.server import Server, wait_for

pytestmark = pytest.mark.e2e

RECORD = """
import json, os

def handler(event, context):
    with open(os.environ["OUT"], "a") as out:
        out.write(json.dumps({"id": event["id"], "time": event["time"]}) + "\\n")
"""


def fired(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def seconds(records: list[dict[str, str]]) -> list[int]:
    return [
        int(datetime.fromisoformat(r["time"].replace("Z", "+00:00")).timestamp()) for r in records
    ]


def test_rate_1_second_fires_once_per_slot_across_a_restart(tmp_path: Path) -> None:
    skip_out, catch_out = tmp_path / "skip.txt", tmp_path / "catch.txt"
    manifest = write_project(
        tmp_path / "project",
        {
            "skipper": (RECORD, {"environment": {"OUT": str(skip_out)},
                                 "triggers": [{"schedule": "rate(1 second)"}]}),
            "catcher": (RECORD, {"environment": {"OUT": str(catch_out)},
                                 "triggers": [{"schedule": {"expression": "rate(1 second)",
                                                            "missed": "catch_up"}}]}),
        },
    )  # fmt: skip
    server = Server(tmp_path / "data")
    try:
        server.start("--deploy", str(manifest))
        wait_for(lambda: len(fired(catch_out)) >= 3, what="three firings before the restart")
        server.terminate()
        stopped_at = time.time()
        time.sleep(1.5)  # at least one slot passes while the server is down
        server.start()
        wait_for(
            lambda: (
                max(seconds(fired(catch_out)), default=0) >= int(stopped_at) + 4
                and max(seconds(fired(skip_out)), default=0) >= int(stopped_at) + 4
            ),
            what="firings after the restart",
        )
    finally:
        server.stop()

    for records in (fired(skip_out), fired(catch_out)):
        ids = [r["id"] for r in records]
        assert len(ids) == len(set(ids)), f"a slot fired twice: {ids}"
        assert all(r["id"].endswith("@" + r["time"]) for r in records)
    # catch_up: every second from the first slot to the last, downtime included
    # (Delivery promises no order: concurrent invocations may write out of order.)
    caught = sorted(seconds(fired(catch_out)))
    assert caught == list(range(caught[0], caught[-1] + 1))
    # skip (the default): the slots of the downtime never fire
    skipped = sorted(seconds(fired(skip_out)))
    assert any(b - a > 1 for a, b in itertools.pairwise(skipped))
    down = range(int(stopped_at) + 1, int(stopped_at) + 2)
    assert not set(down) & set(skipped)
    assert set(down) <= set(caught)
