"""The AWS SDK for JavaScript v3 packages that Node.js functions use without declaring
them, as they do on Lambda.

A node keeps them in one folder (``<data dir>/runtimes/nodejs-sdk`` unless the setting
``node_sdk_dir`` says otherwise), installed from the npm registry by ``install_sdk``
(``triggerfish runtimes install-sdk``): a ``package.json`` naming ``PACKAGES``, npm's
``node_modules`` and lock file, and ``triggerfish-sdk.json`` (the versions installed),
written last: a folder without it is not used. An install is made beside the folder and
swapped in whole, so environments never see half of one.

Functions find the folder's ``node_modules`` through ``NODE_PATH``, after their own
``node_modules`` and after any folder already in ``NODE_PATH``: a function's own copy of
a package wins (``node_path``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from triggerfish.errors import BuildError

#: What the bundle holds: the clients of the APIs a Triggerfish node serves or that
#: functions call most, and the libraries written on top of them.
PACKAGES = (
    "@aws-sdk/client-s3",
    "@aws-sdk/client-lambda",
    "@aws-sdk/client-sqs",
    "@aws-sdk/client-sns",
    "@aws-sdk/client-eventbridge",
    "@aws-sdk/client-dynamodb",
    "@aws-sdk/client-secrets-manager",
    "@aws-sdk/lib-dynamodb",
    "@aws-sdk/lib-storage",
    "@aws-sdk/s3-request-presigner",
)
DEFAULT_VERSION = "^3"
MARKER = "triggerfish-sdk.json"
NODE_MODULES = "node_modules"
#: npm's output kept in an install's error.
TAIL_LINES = 20


def default_sdk_dir(data_dir: Path) -> Path:
    return data_dir / "runtimes" / "nodejs-sdk"


def installed_modules(sdk_dir: Path | None) -> Path | None:
    """The ``node_modules`` of a complete install in ``sdk_dir``; None when there is none."""
    if sdk_dir is None or not (sdk_dir / MARKER).is_file():
        return None
    return sdk_dir / NODE_MODULES


def installed_versions(sdk_dir: Path) -> dict[str, str]:
    """The version of each package of the install in ``sdk_dir`` (empty: none)."""
    try:
        versions = json.loads((sdk_dir / MARKER).read_text())["packages"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return {str(name): str(version) for name, version in dict(versions).items()}


def node_path(env: dict[str, str], modules: Path | None) -> dict[str, str]:
    """``env`` with ``modules`` last in its ``NODE_PATH`` (unchanged without one)."""
    if modules is None:
        return env
    entries = [entry for entry in env.get("NODE_PATH", "").split(os.pathsep) if entry]
    if str(modules) in entries:
        return env
    return {**env, "NODE_PATH": os.pathsep.join([*entries, str(modules)])}


def install_sdk(
    sdk_dir: Path,
    *,
    version: str = DEFAULT_VERSION,
    packages: tuple[str, ...] = PACKAGES,
    output: Callable[[str], None] | None = None,
) -> dict[str, str]:
    """Install ``packages`` at ``version`` (an npm range) into ``sdk_dir``, replacing
    what is there once the new install is complete; the versions installed. Raises
    ``BuildError`` with npm's last lines when npm is missing or fails."""
    npm = shutil.which("npm")
    if npm is None:
        raise BuildError(
            "installing the AWS SDK for Node.js functions needs npm, which is not on this "
            "machine's PATH: install Node.js and npm (scripts/install-node.sh)"
        )
    sdk_dir = sdk_dir.absolute()
    staging = sdk_dir.with_name(sdk_dir.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    manifest = {
        "name": "triggerfish-nodejs-sdk",
        "private": True,
        "description": "The AWS SDK v3 packages of Triggerfish's Node.js functions",
        "dependencies": dict.fromkeys(packages, version),
    }
    (staging / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")
    argv = [npm, "install", "--omit=dev", "--no-audit", "--no-fund", "--no-update-notifier"]
    tail: list[str] = []
    try:
        with subprocess.Popen(
            argv,
            cwd=staging,
            env={**os.environ, "NO_COLOR": "1"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ) as process:
            assert process.stdout is not None
            for line in process.stdout:
                line = line.rstrip("\n")
                if output is not None:
                    output(line)
                tail = [*tail[-(TAIL_LINES - 1) :], line]
            code = process.wait()
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise BuildError(f"cannot run npm: {exc}") from exc
    if code != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise BuildError(
            f"npm install of the AWS SDK ({version}) failed with exit status {code}:\n"
            + "\n".join(tail)
        )
    versions = {}
    for name in packages:
        found = json.loads((staging / NODE_MODULES / name / "package.json").read_text())
        versions[name] = str(found["version"])
    (staging / MARKER).write_text(json.dumps({"packages": versions}, indent=2) + "\n")
    previous = sdk_dir.with_name(sdk_dir.name + ".old")
    shutil.rmtree(previous, ignore_errors=True)
    if sdk_dir.exists():
        sdk_dir.rename(previous)
    staging.rename(sdk_dir)
    shutil.rmtree(previous, ignore_errors=True)
    return versions
