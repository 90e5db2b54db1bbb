"""A Python that every user of the machine can read, for nodes whose sandbox runs
functions as users of their own (a Python under ``/root``, as pyenv installs it, is
not: the sandbox then keeps functions as the node's user, level ``partial``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from support.server import Server
from support.services import in_ci

#: A function that tries every escape (``{"try": ...}``) and says how each went.

#: Interpreters of the machine's own packages, readable by everyone.
CANDIDATES = (f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}",)


def readable_python() -> Path:
    """A virtual environment on the machine's own Python of this version, in a folder
    everyone can pass, that sees this environment's packages (Triggerfish included)
    through a ``.pth`` file; removed again by the caller (``shutil.rmtree``)."""
    if os.geteuid() != 0:
        pytest.skip("the sandbox runs functions as users of their own only as root")
    base = next((c for c in CANDIDATES if os.access(c, os.X_OK)), None)
    if base is None:
        message = f"no system Python {sys.version_info.major}.{sys.version_info.minor} found"
        if in_ci():
            pytest.fail(message + " (CI installs python3 from Debian's packages)")
        pytest.skip(message)
    folder = Path(tempfile.mkdtemp(prefix="tf-python-"))
    os.chmod(folder, 0o755)
    try:
        subprocess.run([base, "-m", "venv", "--without-pip", str(folder)], check=True)
        packages = subprocess.run(
            [
                str(folder / "bin" / "python"),
                "-c",
                "import sysconfig; print(sysconfig.get_paths()['purelib'])",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        ours = sysconfig.get_paths()["purelib"]
        (Path(packages) / "triggerfish-tests.pth").write_text(
            f"import site; site.addsitedir({ours!r})\n"
        )
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder / "bin" / "python"


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
                "tmp": os.environ["TMPDIR"], "cwd": os.getcwd(),
                "task_root": os.environ["LAMBDA_TASK_ROOT"]}
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
            "signal server": attempt(lambda: os.kill(server, 0)),
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


def invoke(node: Server, function: str, event: dict[str, Any]) -> httpx.Response:
    with node.client(timeout=90) as api:
        return api.post(f"/v1/functions/{function}/invoke", content=json.dumps(event))


#: What the hostile function's ``files`` attempt must be refused, whatever the level
#: (a user of its own, or a Landlock fence).
REFUSED = (
    "admin.token",
    "store.db",
    "access-keys.key",
    "list data",
    "artifacts",
    "server environ",
    "zygote environ",
    "other code",
    "other scratch",
    "signal server",
)


def try_the_files(node: Server) -> dict[str, str]:
    """The hostile function's attempts on the data directory, the node's processes and
    the ``other`` function's files: how each went."""
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
    outcome: dict[str, str] = answer.json()
    return outcome
