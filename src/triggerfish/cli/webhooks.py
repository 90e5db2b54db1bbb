"""``triggerfish webhooks``: inbound webhooks (``ls``, ``show``, ``set``, ``rm``), as
the manifest's ``webhooks:`` declares them.

``set`` replaces the whole definition: from ``--file`` (one webhook's settings, or a
manifest with it under ``webhooks:``) and options, which win over the file. ``--secret``
takes a reference only (a Triggerfish secret's name, or ``env:NAME``), so that no
signing secret is typed on a command line; a literal one can come from the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from triggerfish.cli.client import Client
from triggerfish.cli.definitions import given, read_definition, webhook
from triggerfish.cli.options import DataDirOpt, JsonOpt
from triggerfish.cli.output import console, print_json, table
from triggerfish.config import load_settings

app = typer.Typer(no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="the webhook")]


def _client(data_dir: Path | None) -> Client:
    return Client(load_settings({"data_dir": data_dir}))


def _secret(item: dict[str, Any]) -> str:
    secret = item.get("secret")
    if secret is None:
        return "none (open to anyone)"
    if isinstance(secret, dict):
        return f"secret {secret.get('secret')}"
    return str(secret)


@app.command("ls")
def ls(data_dir: DataDirOpt = None, as_json: JsonOpt = False) -> None:
    """Webhooks, with their topics and how requests are signed."""
    with _client(data_dir) as api:
        webhooks = api.json("GET", "/v1/webhooks")["webhooks"]
    if as_json:
        print_json(webhooks)
        return
    table(
        "webhooks",
        ["name", "topic", "format", "signed with", "type"],
        ((w["name"], w["topic"], w["format"], _secret(w), w["type"] or "") for w in webhooks),
    )


@app.command("show")
def show(name: NameArg, data_dir: DataDirOpt = None, as_json: JsonOpt = False) -> None:
    """One webhook: where services send to, its topic and its signature settings."""
    with _client(data_dir) as api:
        item = api.json("GET", f"/v1/webhooks/{name}")
        url = f"{api.url.rstrip('/')}/v1/webhooks/{name}"
    if as_json:
        print_json({**item, "url": url})
        return
    console.print(f"[bold]{name}[/]: POST {url}")
    for key in ("topic", "format", "header", "tolerance", "type", "source"):
        if item.get(key) is not None:
            console.print(f"  {key}: {item[key]}", markup=False, soft_wrap=True)
    console.print(f"  signed with: {_secret(item)}", markup=False, soft_wrap=True)


@app.command("set")
def set_(
    name: NameArg,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="JSON or YAML: the settings, or a manifest")
    ] = None,
    topic: Annotated[str | None, typer.Option(help="the topic its events go to")] = None,
    secret: Annotated[
        str | None,
        typer.Option(help="the signing secret: a Triggerfish secret's name, or env:NAME"),
    ] = None,
    format_: Annotated[
        str | None, typer.Option("--format", help="plain, github or timestamped")
    ] = None,
    header: Annotated[str | None, typer.Option(help="the signature's header")] = None,
    tolerance: Annotated[
        str | None, typer.Option(help="timestamped: how old a signature may be (5m)")
    ] = None,
    type_: Annotated[
        str | None, typer.Option("--type", help="the events' CloudEvents type")
    ] = None,
    source: Annotated[str | None, typer.Option(help="the events' CloudEvents source")] = None,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create or replace a webhook.

    triggerfish webhooks set github --topic gh-events --secret github-hook --format github
    """
    settings = read_definition(file, "webhooks", name)
    if secret is not None and not secret.startswith("env:"):
        secret_setting: Any = {"secret": secret}
    else:
        secret_setting = secret
    settings.update(
        given(
            topic=topic,
            secret=secret_setting,
            format=format_,
            header=header,
            tolerance=tolerance,
            type=type_,
            source=source,
        )
    )
    config = webhook(name, settings, str(file) if file else "webhook settings")
    with _client(data_dir) as api:
        item = api.json("PUT", f"/v1/webhooks/{name}", json=config.model_dump(mode="json"))
    if as_json:
        print_json(item)
        return
    console.print(
        f"webhook {name} ready: POST /v1/webhooks/{name} -> topic {item['topic']}, "
        f"signed with {_secret(item)}",
        markup=False,
        soft_wrap=True,
    )


@app.command("rm")
def rm(name: NameArg, data_dir: DataDirOpt = None, as_json: JsonOpt = False) -> None:
    """Remove a webhook; its topic and the events on it stay."""
    with _client(data_dir) as api:
        api.request("DELETE", f"/v1/webhooks/{name}")
    if as_json:
        print_json({"removed": name})
        return
    console.print(f"removed webhook {name} (its topic stays)")
