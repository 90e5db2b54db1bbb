"""A hostile function against a node that is not root (level ``partial``): Landlock
keeps it out of the data directory, other functions' files and the node's processes
(docs/security.md)."""

from __future__ import annotations

import os
import shutil
import stat
import sys
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
from support.server import Server
from support.services import in_ci

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

#: The user the node runs as when the tests run as root (any unused number will do).
NODE_UID = 1_990_000


def landlock_abi() -> int:
    from triggerfish.runtime import landlock

    return landlock.abi()


def as_node_user(python: Path, folder: Path) -> str:
    """An executable that runs ``python`` as ``NODE_UID``, for ``Server``."""
    wrapper = folder / "python-as-node-user"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'exec setpriv --reuid={NODE_UID} --regid={NODE_UID} --clear-groups "{python}" "$@"\n'
    )
    wrapper.chmod(0o755)
    return str(wrapper)


@pytest.fixture(scope="module")
def node() -> Iterator[Server]:
    if landlock_abi() < 1:
        message = "the kernel offers no Landlock"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    folder = Path(tempfile.mkdtemp(prefix="tf-unprivileged-"))
    python_dir: Path | None = None
    try:
        if os.geteuid() == 0:
            python = readable_python()
            python_dir = python.parents[1]
            os.chmod(folder, 0o755)
            executable = as_node_user(python, folder)
        else:
            executable = sys.executable
        manifest = write_project(
            folder / "project",
            {"hostile": (HOSTILE, {"timeout": 10}), "other": (OTHER, {})},
        )
        add_node_function(manifest)
        data = folder / "data"
        data.mkdir()
        if os.geteuid() == 0:
            for root, dirs, files in os.walk(folder / "project"):
                for name in [*dirs, *files]:
                    os.chmod(os.path.join(root, name), 0o755)
            os.chown(data, NODE_UID, NODE_UID)
        server = Server(data, python=executable, env={"HOME": str(data)})
        try:
            server.start("--deploy", str(manifest), timeout=60)
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if python_dir is not None:
            shutil.rmtree(python_dir, ignore_errors=True)


def test_the_node_says_what_its_fence_covers(node: Server) -> None:
    with node.client() as api:
        (this,) = [n for n in api.get("/v1/nodes").json()["nodes"] if n["this"]]
    level = this["info"]["sandbox"]
    assert level.startswith("partial (the node is not root"), level
    assert "Landlock" in level
    assert f"sandbox: {level}" in node.output()


def test_the_node_runs_as_an_unprivileged_user(node: Server) -> None:
    answer = invoke(node, "hostile", {"try": "whoami"}).json()
    assert answer["uid"] == os.stat(node.data_dir / "admin.token").st_uid
    if os.geteuid() == 0:
        assert answer["uid"] == NODE_UID


def test_the_data_directory_the_node_and_other_functions_are_out_of_reach(
    node: Server,
) -> None:
    outcome = try_the_files(node)
    assert outcome.pop("own scratch") == "allowed"
    assert outcome == dict.fromkeys(REFUSED, "PermissionError")
    # The same user owns the files: only the fence stands between them and the function.
    token = node.data_dir / "admin.token"
    assert stat.S_IMODE(os.stat(token).st_mode) & 0o400


def test_a_node_js_function_is_fenced_as_well(node: Server) -> None:
    answer = invoke(node, "js", {"data": str(node.data_dir)})
    assert answer.status_code == 200, answer.text
    assert answer.json().get("token") == "EACCES", answer.text


def test_a_fenced_function_may_reach_the_network(node: Server) -> None:
    answer = invoke(node, "hostile", {"try": "network", "url": f"{node.url}/healthz"})
    assert answer.json() == {"status": 200}
