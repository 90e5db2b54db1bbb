"""``triggerfish runtimes``: what this machine gives functions beyond their own code.

``install-sdk`` installs the AWS SDK v3 packages that Node.js functions use without
declaring them (``triggerfish.runtime.node.sdk``), with npm, into the folder the node
reads them from (``node_sdk_dir``, by default under the data directory). It runs on
the machine of the node, like ``up``; a node that is running uses the new install for
the environments it starts next.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from triggerfish.cli.options import DataDirOpt, JsonOpt
from triggerfish.cli.output import console, errors, print_json, table
from triggerfish.config import load_settings
from triggerfish.runtime.node.sdk import DEFAULT_VERSION, install_sdk, installed_versions

app = typer.Typer(no_args_is_help=True)

IntoOpt = Annotated[
    Path | None,
    typer.Option("--into", help="The folder to install into (default: the node's node_sdk_dir)."),
]


def _folder(data_dir: Path | None, into: Path | None) -> Path:
    return into or load_settings({"data_dir": data_dir}).resolved_node_sdk_dir


@app.command("install-sdk")
def install(
    data_dir: DataDirOpt = None,
    into: IntoOpt = None,
    version: Annotated[
        str, typer.Option("--version", help="An npm version range for every package.")
    ] = DEFAULT_VERSION,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Hide npm's output.")] = False,
) -> None:
    """Install the AWS SDK v3 packages of Node.js functions (needs npm)."""
    folder = _folder(data_dir, into)
    console.print(f"installing the AWS SDK v3 packages ({version}) into {folder}")

    def show(line: str) -> None:
        errors.print(f"  {line}", markup=False, style="dim")

    versions = install_sdk(folder, version=version, output=None if quiet else show)
    table(None, ["package", "version"], sorted(versions.items()))
    console.print(f"Node.js functions of a node with node_sdk_dir {folder} now find them")


@app.command("sdk")
def show(
    data_dir: DataDirOpt = None,
    into: IntoOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The AWS SDK v3 packages installed for Node.js functions, if any."""
    folder = _folder(data_dir, into)
    versions = installed_versions(folder)
    if as_json:
        print_json({"folder": str(folder), "packages": versions})
    elif not versions:
        console.print(f"not installed in {folder}: triggerfish runtimes install-sdk")
    else:
        table(None, ["package", "version"], sorted(versions.items()))
