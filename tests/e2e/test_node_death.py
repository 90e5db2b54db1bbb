"""A node killed with ``kill -9`` takes its execution environments with it: another
node (or the same one, restarted) runs the leased events again, and a handler left
running would do its work twice."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import yaml

from support.server import Server, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PYTHON = """
import os, subprocess, time

def handler(event, context):
    # A child of the handler, in its process group, must end with it.
    child = subprocess.Popen(["sleep", "120"])
    name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
    with open(os.path.join(os.environ["PIDS"], name), "w") as out:
        out.write(f"{os.getpid()} {child.pid}")
    time.sleep(120)
"""

NODE = """
const fs = require("fs");
const path = require("path");
exports.handler = async () => {
  fs.writeFileSync(path.join(process.env.PIDS, "sleeper-js"), String(process.pid));
  await new Promise((resolve) => setTimeout(resolve, 120000));
};
"""


def alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie waiting for its reaper does not)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def project(root: Path, pids: Path) -> Path:
    for name, file, source in (("py", "main.py", PYTHON), ("js", "index.js", NODE)):
        (root / name).mkdir(parents=True)
        (root / name / file).write_text(source)
    common = {"timeout": 300, "environment": {"PIDS": str(pids)}, "triggers": [{"topic": "work"}]}
    manifest = {
        "topics": {"work": {}},
        "functions": {
            "sleeper-py": {"handler": "main.handler", "code": "./py", **common},
            "sleeper-snap": {
                "handler": "main.handler",
                "code": "./py",
                "snapstart": True,
                **common,
            },
            "sleeper-js": {
                "handler": "index.handler",
                "code": "./js",
                "runtime": "nodejs",
                **common,
            },
        },
    }
    path = root / "triggerfish.yaml"
    path.write_text(yaml.safe_dump(manifest))
    return path


def test_kill_9_of_the_node_ends_its_running_handlers(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()
    server = Server(tmp_path / "data").start("--deploy", str(project(tmp_path / "p", pids)))
    try:
        with server.client() as api:
            event = {"specversion": "1.0", "id": "e-1", "source": "test", "type": "t"}
            answer = api.post(
                "/v1/topics/work/events",
                content=json.dumps(event),
                headers={"Content-Type": "application/cloudevents+json"},
            )
            assert answer.status_code == 202, answer.text
        written = wait_for(
            lambda: (
                {p.name: p.read_text() for p in pids.iterdir() if p.read_text()}
                if len(list(pids.iterdir())) == 3
                else None
            ),
            timeout=60,
            what="the three handlers running",
        )
        running = {
            f"{name} {i}": int(pid)
            for name, text in written.items()
            for i, pid in enumerate(text.split())
        }
        assert len(running) == 5
        assert all(alive(pid) for pid in running.values())
        server.kill9()
    finally:
        server.stop()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(pid) for pid in running.values()):
        time.sleep(0.05)
    left = {name: pid for name, pid in running.items() if alive(pid)}
    for pid in left.values():
        os.kill(pid, 9)
    assert not left, f"handlers still running after their node was killed: {left}"
