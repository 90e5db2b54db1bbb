"""``triggerfish functions``: list functions, show one in full, remove one.

``rm`` removes a function with its versions, aliases and triggers; it asks first unless
given ``--yes``, and refuses to guess when there is nobody to ask (no terminal).
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
import yaml

from triggerfish.cli.client import Client, CliError
from triggerfish.cli.options import DataDirOpt, JsonOpt
from triggerfish.cli.output import console, print_json, table, when
from triggerfish.config import load_settings

app = typer.Typer(no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="the function")]


def _client(data_dir: Any) -> Client:
    return Client(load_settings({"data_dir": data_dir}))


@app.command("ls")
def ls(data_dir: DataDirOpt = None, as_json: JsonOpt = False) -> None:
    """List functions and their triggers."""
    with _client(data_dir) as api:
        functions = api.json("GET", "/v1/functions")["functions"]
        triggers = api.json("GET", "/v1/triggers")["triggers"]
    if as_json:
        print_json({"functions": functions, "triggers": triggers})
        return
    table(
        "functions",
        ["name", "version", "#", "runtime", "handler", "memory"],
        (
            (f["name"], f["version"], f["number"], f["runtime"], f["handler"], f["memory"])
            for f in functions
        ),
    )
    table(
        "triggers",
        ["id", "topic", "function", "backlog", "in flight", "retrying", "dead letters to"],
        (
            (
                t["id"],
                t["topic"],
                t["function"],
                t["backlog"],
                t["in_flight"],
                t["waiting_retry"],
                t["dead_letter"],
            )
            for t in triggers
            if not t["topic"].startswith("_")
        ),
    )


@app.command("show")
def show(name: NameArg, data_dir: DataDirOpt = None, as_json: JsonOpt = False) -> None:
    """A function's versions, aliases, triggers, and the settings of its live version."""
    with _client(data_dir) as api:
        function = api.json("GET", f"/v1/functions/{name}")
    if as_json:
        print_json(function)
        return
    versions = function["versions"]
    numbers = {v["version"]: v["number"] for v in versions}
    console.print(
        f"[bold]{function['name']}[/]: created {when(function['created_at'])}, "
        f"updated {when(function['updated_at'])}",
        soft_wrap=True,
    )
    table(
        "versions",
        ["#", "version", "created", "runtime", "handler", "memory", "timeout"],
        (
            (
                v["number"],
                v["version"],
                when(v["created_at"]),
                v["config"].get("runtime"),
                v["config"].get("handler"),
                v["config"].get("memory"),
                v["config"].get("timeout"),
            )
            for v in versions
        ),
    )
    table(
        "aliases",
        ["alias", "#", "version"],
        (
            (alias, numbers.get(version, "?"), version)
            for alias, version in sorted(function["aliases"].items())
        ),
    )
    table(
        "triggers",
        ["id", "topic", "filters", "retries", "dead letters to", "backlog"],
        (
            (
                t["id"],
                t["topic"],
                len(t["filters"]) or "",
                t["retry"].get("max_attempts"),
                t["dead_letter"],
                t["backlog"],
            )
            for t in function["triggers"]
            if not t["topic"].startswith("_")  # the one of asynchronous invokes
        ),
    )
    live = function["aliases"].get("live")
    config = next((v["config"] for v in versions if v["version"] == live), None)
    if config is not None:
        console.print(f"[bold]settings of live (version {numbers[live]})[/]")
        console.print(
            yaml.safe_dump(config, sort_keys=False).rstrip(), markup=False, soft_wrap=True
        )


@app.command("rm")
def rm(
    name: NameArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask first.")] = False,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove a function with its versions, aliases and triggers (the events on its
    topics stay)."""
    with _client(data_dir) as api:
        function = api.json("GET", f"/v1/functions/{name}")  # exit 3 when there is none
        triggers = [t for t in function["triggers"] if not t["topic"].startswith("_")]
        what = (
            f"function {name} with its {len(function['versions'])} version(s), "
            f"{len(function['aliases'])} alias(es) and {len(triggers)} trigger(s)"
        )
        if not yes:
            if not sys.stdin.isatty():
                raise CliError(f"this would remove {what}; pass --yes to remove it", 2)
            typer.confirm(f"Remove {what}?", abort=True)
        api.request("DELETE", f"/v1/functions/{name}")
    if as_json:
        print_json({"removed": name})
        return
    console.print(f"removed {what}", markup=False, soft_wrap=True)
