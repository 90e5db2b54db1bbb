"""``triggerfish secrets``: named secrets for functions' environments and webhooks.

A value is read from standard input (hidden when it is a terminal) or from a file,
never from the command line, where it would stay in the shell's history and show in
the process list. Nothing here prints a value.
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from triggerfish.cli.client import Client, CliError
from triggerfish.cli.options import DataDirOpt, JsonOpt
from triggerfish.cli.output import console, print_json, table, when
from triggerfish.config import load_settings
from triggerfish.security.secrets import check_name

app = typer.Typer(no_args_is_help=True)


def read_value(name: str, from_file: Path | None) -> str:
    """The value from ``from_file`` as it is, or from standard input without its one
    trailing newline (``echo`` adds one)."""
    if from_file is not None:
        try:
            data = from_file.read_bytes()
        except OSError as exc:
            raise CliError(f"--from-file: cannot read {from_file}: {exc.strerror}", 2) from None
        try:
            value = data.decode("utf-8")
        except UnicodeDecodeError:
            raise CliError(
                f"--from-file: {from_file} is not UTF-8 text; encode it first (base64)", 2
            ) from None
    elif sys.stdin.isatty():
        value = getpass.getpass(f"value of {name} (not shown): ")
    else:
        value = sys.stdin.read()
        value = value[:-2] if value.endswith("\r\n") else value.removesuffix("\n")
    if not value:
        raise CliError(
            'no value: pipe it in, for example `printf %s "$DB_PASSWORD" | triggerfish '
            f"secrets set {name}`, or give --from-file PATH",
            2,
        )
    return value


def _used_by(listing: dict[str, Any]) -> str:
    uses = []
    for use in listing["used_by"]:
        if use["kind"] == "function":
            uses.append(f"function {use['name']} ({', '.join(use['variables'])})")
        else:
            uses.append(f"webhook {use['name']}")
    return ", ".join(uses)


@app.command("set")
def set_(
    name: Annotated[str, typer.Argument(help="The secret's name.")],
    from_file: Annotated[
        Path | None, typer.Option("--from-file", help="Read the value from this file, as is.")
    ] = None,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create or replace a secret; the value comes from standard input or --from-file."""
    check_name(name)
    value = read_value(name, from_file)
    with Client(load_settings({"data_dir": data_dir})) as api:
        response = api.request("PUT", f"/v1/secrets/{name}", json={"value": value})
    listing = response.json()
    if as_json:
        print_json(listing)
        return
    console.print(f"secret {name} {'created' if response.status_code == 201 else 'updated'}")
    if listing["used_by"]:
        console.print(f"in force for new environments of: {_used_by(listing)}")


@app.command("ls")
def ls(data_dir: DataDirOpt = None, as_json: JsonOpt = False) -> None:
    """Secrets, without their values: when they were set, and who refers to them."""
    with Client(load_settings({"data_dir": data_dir})) as api:
        listed = api.json("GET", "/v1/secrets")["secrets"]
    if as_json:
        print_json(listed)
        return
    table(
        "secrets",
        ["name", "created", "updated", "used by"],
        ((s["name"], when(s["created_at"]), when(s["updated_at"]), _used_by(s)) for s in listed),
    )


@app.command("rm")
def rm(
    name: Annotated[str, typer.Argument(help="The secret's name.")],
    force: Annotated[
        bool, typer.Option("--force", help="Remove it even while something refers to it.")
    ] = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Remove a secret; refused while a function or a webhook refers to it."""
    with Client(load_settings({"data_dir": data_dir})) as api:
        api.request("DELETE", f"/v1/secrets/{name}", params={"force": "true"} if force else {})
    console.print(f"secret {name} removed")
