"""A hostile function against a node whose sandbox is ``full``: each escape it tries
is refused or contained (docs/security.md)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from support.projects import write_project
from support.sandbox import readable_python
from support.server import Server, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MAX_PROCESSES = 64

HOSTILE = """
import os, socket, subprocess, time, urllib.request

def attempt(action):
    try:
        action()
        return "allowed"
    except OSError as exc:
        return type(exc).__name__

def read(path, size=-1):
    with open(path, "rb") as source:
        return source.read(size)

def handler(event, context):
    what = event["try"]
    data = event.get("data", "")
    if what == "whoami":
        return {"uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(),
                "tmp": os.environ["TMPDIR"], "cwd": os.getcwd()}
    if what == "files":
        zygote = os.getppid()
        with open(f"/proc/{zygote}/stat") as stat:
            server = int(stat.read().rsplit(")", 1)[1].split()[1])
        scratch = os.path.join(os.environ["TMPDIR"], "mine")
        return {
            "admin.token": attempt(lambda: read(os.path.join(data, "admin.token"))),
            "store.db": attempt(lambda: read(os.path.join(data, "store.db"), 16)),
            "access-keys.key": attempt(lambda: read(os.path.join(data, "access-keys.key"))),
            "list data": attempt(lambda: os.listdir(data)),
            "artifacts": attempt(lambda: os.listdir(os.path.join(data, "artifacts"))),
            "server environ": attempt(lambda: read(f"/proc/{server}/environ", 64)),
            "zygote environ": attempt(lambda: read(f"/proc/{zygote}/environ", 64)),
            "other code": attempt(lambda: read(event["other"])),
            "other scratch": attempt(lambda: os.listdir(event["other_tmp"])),
            "own scratch": attempt(lambda: open(scratch, "w").write("x")),
        }
    if what == "network":
        with urllib.request.urlopen(event["url"], timeout=5) as answer:
            return {"status": answer.status}
    if what == "processes":
        children = []
        try:
            for _ in range(200):
                children.append(subprocess.Popen(["sleep", "30"]))
            refused = None
        except OSError as exc:
            refused = type(exc).__name__
        for child in children:
            child.kill()
            child.wait()
        return {"started": len(children), "refused": refused}
    if what == "memory":
        code = "x = bytearray(110 * 1024 * 1024); import time; time.sleep(1)"
        children = [subprocess.Popen(["python3", "-c", code]) for _ in range(8)]
        return {"codes": [child.wait() for child in children]}
    if what == "session":
        child = subprocess.Popen(["sleep", "600"], start_new_session=True)
        with open(os.path.join(os.environ["TMPDIR"], "escapee"), "w") as out:
            out.write(str(child.pid))
        time.sleep(60)
    if what == "fd1":
        chunk = b"x" * (1 << 20)
        for _ in range(300):
            os.write(1, chunk)
        return {"wrote_mb": 300}
    raise ValueError(what)
"""

OTHER = """
def handler(event, context):
    import os
    return {"code": os.getcwd(), "tmp": os.environ["TMPDIR"]}
"""


NODE = """
const fs = require("fs");
exports.handler = async (event) => {
  let token = "allowed";
  try { fs.readFileSync(event.data + "/admin.token"); } catch (error) { token = error.code; }
  return { uid: process.getuid(), token };
};
"""


def add_node_function(manifest: Path) -> None:
    (manifest.parent / "js").mkdir()
    (manifest.parent / "js" / "index.js").write_text(NODE)
    document = yaml.safe_load(manifest.read_text())
    document["functions"]["js"] = {"handler": "index.handler", "code": "./js", "runtime": "nodejs"}
    manifest.write_text(yaml.safe_dump(document))


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    python = readable_python()
    root = tmp_path_factory.mktemp("sandbox")
    # The test's folders are its own (0700): the functions' folders go where they reach.
    reachable = Path(tempfile.mkdtemp(prefix="tf-sandbox-"))
    os.chmod(reachable, 0o711)
    manifest = write_project(
        root / "project",
        {
            "hostile": (HOSTILE, {"memory": 128, "timeout": 5}),
            "other": (OTHER, {}),
        },
    )
    add_node_function(manifest)
    server = Server(
        root / "data",
        python=str(python),
        env={
            "TRIGGERFISH_MAX_PROCESSES": str(MAX_PROCESSES),
            "TRIGGERFISH_SANDBOX_DIR": str(reachable),
        },
    )
    try:
        server.start("--deploy", str(manifest))
        yield server
    finally:
        server.stop()
        shutil.rmtree(python.parents[1], ignore_errors=True)
        shutil.rmtree(reachable, ignore_errors=True)


def invoke(node: Server, function: str, event: dict[str, Any]) -> httpx.Response:
    with node.client(timeout=90) as api:
        return api.post(f"/v1/functions/{function}/invoke", content=json.dumps(event))


def test_the_node_says_its_sandbox_is_full(node: Server) -> None:
    assert "sandbox: full" in node.output()
    with node.client() as api:
        (this,) = [n for n in api.get("/v1/nodes").json()["nodes"] if n["this"]]
    assert this["info"]["sandbox"] == "full"


def test_a_function_runs_as_a_user_of_its_own(node: Server) -> None:
    hostile = invoke(node, "hostile", {"try": "whoami"}).json()
    other = invoke(node, "other", {}).json()
    assert hostile["uid"] != 0
    assert hostile["gid"] == hostile["uid"]
    assert hostile["groups"] == []
    assert hostile["tmp"] != other["tmp"]
    assert hostile["cwd"] != other["code"]


def test_a_node_js_function_is_confined_as_well(node: Server) -> None:
    answer = invoke(node, "js", {"data": str(node.data_dir)}).json()
    python = invoke(node, "hostile", {"try": "whoami"}).json()
    assert answer["token"] == "EACCES"
    assert answer["uid"] not in (0, python["uid"])


def test_the_data_directory_the_server_and_other_functions_are_out_of_reach(
    node: Server,
) -> None:
    other = invoke(node, "other", {}).json()
    answer = invoke(
        node,
        "hostile",
        {
            "try": "files",
            "data": str(node.data_dir),
            "other": os.path.join(other["code"], "main.py"),
            "other_tmp": other["tmp"],
        },
    )
    assert answer.status_code == 200, answer.text
    outcome = answer.json()
    assert outcome.pop("own scratch") == "allowed"
    assert outcome == {
        "admin.token": "PermissionError",
        "store.db": "PermissionError",
        "access-keys.key": "PermissionError",
        "list data": "PermissionError",
        "artifacts": "PermissionError",
        "server environ": "PermissionError",
        "zygote environ": "PermissionError",
        "other code": "PermissionError",
        "other scratch": "PermissionError",
    }


def test_a_function_may_reach_the_network(node: Server) -> None:
    answer = invoke(node, "hostile", {"try": "network", "url": f"{node.url}/healthz"})
    assert answer.json() == {"status": 200}


def test_the_number_of_processes_is_capped(node: Server) -> None:
    outcome = invoke(node, "hostile", {"try": "processes"}).json()
    assert outcome["refused"] == "BlockingIOError"
    assert outcome["started"] < MAX_PROCESSES


def test_memory_taken_through_children_counts_against_the_function(node: Server) -> None:
    codes = invoke(node, "hostile", {"try": "memory"}).json()["codes"]
    # 128 MB hold one child of 110 MB at most: the kernel kills the others.
    assert codes.count(-9) >= 7, codes


def test_a_child_in_a_new_session_ends_with_the_timeout(node: Server) -> None:
    scratch = Path(invoke(node, "hostile", {"try": "whoami"}).json()["tmp"])
    answer = invoke(node, "hostile", {"try": "session"})
    assert answer.json()["errorType"] == "Sandbox.Timedout"
    pid = int((scratch / "escapee").read_text())
    wait_for(lambda: not alive(pid), timeout=10, what="the child killed with its function")


def test_output_straight_to_fd_1_is_contained(node: Server) -> None:
    assert node.process is not None
    before = rss_mb(node.process.pid)
    answer = invoke(node, "hostile", {"try": "fd1"}).json()
    assert answer["errorType"] == "Runtime.OutOfMemory"
    assert rss_mb(node.process.pid) < before + 100
    # The node goes on serving the function.
    assert invoke(node, "hostile", {"try": "whoami"}).status_code == 200
