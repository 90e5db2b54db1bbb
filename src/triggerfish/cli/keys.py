"""``triggerfish keys``: access keys for the S3 and Lambda APIs (boto3, the AWS CLI),
with scopes, resources and an expiry as ``triggerfish tokens`` has (``cli.tokens``).
A key created without ``--scope`` may do everything."""

from __future__ import annotations

from typing import Annotated

import typer

from triggerfish.cli.client import Client
from triggerfish.cli.options import DataDirOpt, JsonOpt
from triggerfish.cli.output import console, print_json, table, when
from triggerfish.cli.tokens import (
    BucketOpt,
    ExpiresOpt,
    FunctionOpt,
    ScopeOpt,
    TopicOpt,
    expiry,
    grant_body,
    last_used,
    scopes_text,
    state,
)
from triggerfish.config import load_settings

app = typer.Typer(no_args_is_help=True)


@app.command()
def create(
    name: Annotated[str, typer.Option("--name", help="A label for people.")] = "",
    scope: ScopeOpt = None,
    topic: TopicOpt = None,
    function: FunctionOpt = None,
    bucket: BucketOpt = None,
    expires: ExpiresOpt = None,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Issue an access key; its secret is shown only now.

    triggerfish keys create --name uploader --scope s3:write --bucket photos/in/*
    """
    settings = load_settings({"data_dir": data_dir})
    with Client(settings) as api:
        body = api.json(
            "POST",
            "/v1/keys",
            json=grant_body(name, scope, topic, function, bucket, expires),
        )
    if as_json:
        print_json(body)
        return
    console.print(f"AWS_ACCESS_KEY_ID={body['id']}")
    console.print(f"AWS_SECRET_ACCESS_KEY={body['secret']}")
    console.print(f"AWS_ENDPOINT_URL={api.url}")  # the server the key was made on
    note = "" if scope else " (no --scope: this key may do everything)"
    console.print(f"[dim]may: {scopes_text(body)}{note}; expires {expiry(body)}.[/]")
    console.print("[dim]The secret is shown only once; keep it somewhere safe.[/]")


@app.command("ls")
def ls(data_dir: DataDirOpt = None, as_json: JsonOpt = False) -> None:
    """Access keys, without their secrets, with when each was last used."""
    with Client(load_settings({"data_dir": data_dir})) as api:
        keys = api.json("GET", "/v1/keys")["keys"]
    if as_json:
        print_json(keys)
        return
    table(
        "access keys",
        ["id", "name", "function", "scopes", "created", "expires", "last used", "state"],
        (
            (
                key["id"],
                key["name"],
                key.get("function") or "",
                scopes_text(key),
                when(key["created_at"]),
                expiry(key),
                last_used(key),
                state(key),
            )
            for key in keys
        ),
    )


# ``keys list`` was the name before ``ls``; scripts may still use it.
app.command("list", hidden=True)(ls)


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
