"""A hostile function against a node whose sandbox is ``full``: each escape it tries
is refused or contained (docs/security.md)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.projects import write_project
from support.sandbox import (
    HOSTILE,
    OTHER,
    REFUSED,
    add_node_function,
    invoke,
    readable_python,
    try_the_files,
)
from support.server import Server, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MAX_PROCESSES = 64


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
    # It runs from its own copy of the code, and Lambda's variables say so.
    assert hostile["task_root"] == hostile["cwd"]


def test_a_node_js_function_is_confined_as_well(node: Server) -> None:
    answer = invoke(node, "js", {"data": str(node.data_dir)}).json()
    python = invoke(node, "hostile", {"try": "whoami"}).json()
    assert answer["token"] == "EACCES"
    assert answer["uid"] not in (0, python["uid"])


def test_the_data_directory_the_server_and_other_functions_are_out_of_reach(
    node: Server,
) -> None:
    outcome = try_the_files(node)
    assert outcome.pop("own scratch") == "allowed"
    assert outcome == dict.fromkeys(REFUSED, "PermissionError")


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
