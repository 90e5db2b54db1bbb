"""``triggerfish alias``: point names at versions, to promote or roll back without a
deploy (``live`` is the alias deploys move and triggers follow by default)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from triggerfish.cli.client import Client
from triggerfish.cli.options import DataDirOpt, JsonOpt
from triggerfish.cli.output import console, print_json, table
from triggerfish.config import load_settings

app = typer.Typer(no_args_is_help=True)


def _show(alias: dict[str, Any]) -> str:
    return f"{alias['function']}:{alias['alias']} -> version {alias['number']} ({alias['version']})"


@app.command("set")
def set_(
    function: Annotated[str, typer.Argument(help="the function")],
    alias: Annotated[str, typer.Argument(help="the alias to create or move")],
    version: Annotated[str, typer.Argument(help="a version number or 12-character id")],
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Point ALIAS at VERSION (creating it if needed)."""
    with Client(load_settings({"data_dir": data_dir})) as api:
        body = api.json(
            "PUT", f"/v1/functions/{function}/aliases/{alias}", json={"version": version}
        )
    if as_json:
        print_json(body)
    else:
        console.print(_show(body))


@app.command("ls")
def list_(
    function: Annotated[str, typer.Argument(help="the function")],
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The aliases of FUNCTION and the versions they point at."""
    with Client(load_settings({"data_dir": data_dir})) as api:
        body = api.json("GET", f"/v1/functions/{function}/aliases")
    if as_json:
        print_json(body["aliases"])
        return
    table(
        f"aliases of {function}",
        ["alias", "version", "id"],
        ((a["alias"], a["number"], a["version"]) for a in body["aliases"]),
    )


@app.command("rm")
def remove(
    function: Annotated[str, typer.Argument(help="the function")],
    alias: Annotated[str, typer.Argument(help="the alias to delete (not 'live')")],
    data_dir: DataDirOpt = None,
) -> None:
    """Delete ALIAS; triggers that name it stop until it exists again."""
    with Client(load_settings({"data_dir": data_dir})) as api:
        api.request("DELETE", f"/v1/functions/{function}/aliases/{alias}")
    console.print(f"deleted {function}:{alias}")
