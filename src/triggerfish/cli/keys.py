"""``triggerfish keys``: access keys for the S3-compatible API (boto3, the AWS CLI)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from triggerfish.cli.client import Client
from triggerfish.cli.output import console, print_json, table, when
from triggerfish.config import load_settings

app = typer.Typer(no_args_is_help=True)

DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", envvar="TRIGGERFISH_DATA_DIR")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


@app.command()
def create(
    name: Annotated[str, typer.Option("--name", help="A label for people.")] = "",
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Issue an access key; its secret is shown only now."""
    settings = load_settings({"data_dir": data_dir})
    with Client(settings) as api:
        body = api.json("POST", "/v1/keys", json={"name": name})
    if as_json:
        print_json(body)
        return
    console.print(f"AWS_ACCESS_KEY_ID={body['id']}")
    console.print(f"AWS_SECRET_ACCESS_KEY={body['secret']}")
    console.print(f"AWS_ENDPOINT_URL={settings.resolved_url}")
    console.print("[dim]The secret is shown only once; keep it somewhere safe.[/]")


@app.command("list")
def list_(data_dir: DataDirOpt = None, as_json: JsonOpt = False) -> None:
    """Access keys, without their secrets."""
    with Client(load_settings({"data_dir": data_dir})) as api:
        keys = api.json("GET", "/v1/keys")["keys"]
    if as_json:
        print_json(keys)
        return
    table(
        "access keys",
        ["id", "name", "function", "created", "state"],
        (
            (
                key["id"],
                key["name"],
                key.get("function") or "",
                when(key["created_at"]),
                "revoked" if key["revoked"] else "active",
            )
            for key in keys
        ),
    )


@app.command()
def revoke(
    key_id: Annotated[str, typer.Argument(help="The access key id.")],
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Revoke an access key: it no longer signs requests."""
    with Client(load_settings({"data_dir": data_dir})) as api:
        body = api.json("DELETE", f"/v1/keys/{key_id}")
    if as_json:
        print_json(body)
        return
    console.print(f"revoked {body['id']}")
