"""``triggerfish tokens``: API tokens (``Authorization: Bearer tfk_...``) with scopes,
resources and an expiry: ``create``, ``ls``, ``revoke``.

The options here are shared with ``triggerfish keys``: ``--scope`` (repeated) takes a
permission (``publish``, ``s3:read``, or one with its resource: ``invoke:resize:live``);
``--topic``, ``--function`` and ``--bucket`` give the resources of the scopes of their
kind; ``--expires`` a duration (``90s``, ``15m``, ``12h``, ``30d``).
"""

from __future__ import annotations

import re
import time
from typing import Annotated, Any

import typer

from triggerfish.cli.client import Client, CliError
from triggerfish.cli.options import DataDirOpt, JsonOpt
from triggerfish.cli.output import console, print_json, table, when
from triggerfish.config import load_settings

app = typer.Typer(no_args_is_help=True)

ScopeOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--scope",
        help="A permission: admin, read, deploy, invoke, publish, s3:read, s3:write, "
        "optionally with ':resource' (publish:orders). Repeat for more.",
    ),
]
TopicOpt = Annotated[
    list[str] | None, typer.Option("--topic", help="A topic (or pattern) for publish.")
]
FunctionOpt = Annotated[
    list[str] | None,
    typer.Option("--function", help="A function (or name:qualifier) for invoke and deploy."),
]
BucketOpt = Annotated[
    list[str] | None,
    typer.Option("--bucket", help="A bucket or bucket/key pattern for s3:read and s3:write."),
]
ExpiresOpt = Annotated[
    str | None, typer.Option("--expires", help="How long it is valid: 90s, 15m, 12h, 30d.")
]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def seconds(text: str) -> float:
    """``30d`` as seconds; ``CliError`` (exit 2) for what is not a duration."""
    match = _DURATION.match(text)
    if match is None or float(match.group(1)) <= 0:
        raise CliError(f"--expires {text!r}: expected a duration such as 90s, 15m, 12h or 30d", 2)
    return float(match.group(1)) * _SECONDS[match.group(2)]


def grant_body(
    name: str,
    scopes: list[str] | None,
    topics: list[str] | None,
    functions: list[str] | None,
    buckets: list[str] | None,
    expires: str | None,
) -> dict[str, Any]:
    """The JSON body ``/v1/tokens`` and ``/v1/keys`` take."""
    body: dict[str, Any] = {
        "name": name,
        "scopes": scopes or [],
        "topics": topics or [],
        "functions": functions or [],
        "buckets": buckets or [],
    }
    if expires is not None:
        body["expires_in"] = seconds(expires)
    return body


def state(item: dict[str, Any]) -> str:
    if item.get("revoked"):
        return "revoked"
    if item.get("expired"):
        return "expired"
    return "active"


def expiry(item: dict[str, Any]) -> str:
    return when(item.get("expires_at")) or "never"


def last_used(item: dict[str, Any]) -> str:
    stamp = item.get("last_used_at")
    if not stamp:
        return "never"
    ago = max(0.0, time.time() - stamp)
    if ago < 60:
        return "just now"
    if ago < 3600:
        return f"{int(ago // 60)} min ago"
    if ago < 86400:
        return f"{int(ago // 3600)} h ago"
    return when(stamp)


def scopes_text(item: dict[str, Any]) -> str:
    return ", ".join(item.get("scopes") or []) or "nothing"


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
    """Issue an API token; it is shown only now.

    triggerfish tokens create --scope publish --topic orders --expires 30d
    """
    if not scope:
        raise CliError("give at least one --scope (publish, invoke, deploy, read, ...)", 2)
    body = grant_body(name, scope, topic, function, bucket, expires)
    if not name:
        body["name"] = " ".join([*scope, *(topic or []), *(function or []), *(bucket or [])])[:200]
    with Client(load_settings({"data_dir": data_dir})) as api:
        made = api.json("POST", "/v1/tokens", json=body)
    if as_json:
        print_json(made)
        return
    console.print(made["token"])
    console.print(
        f"[dim]{made['id']} {made['name']!r}: {scopes_text(made)}; expires {expiry(made)}. "
        "The token is shown only once; keep it somewhere safe.[/]"
    )


@app.command("ls")
def ls(data_dir: DataDirOpt = None, as_json: JsonOpt = False) -> None:
    """API tokens, without their secrets, with when each was last used."""
    with Client(load_settings({"data_dir": data_dir})) as api:
        tokens = api.json("GET", "/v1/tokens")["tokens"]
    if as_json:
        print_json(tokens)
        return
    table(
        "API tokens",
        ["id", "name", "scopes", "created", "expires", "last used", "state"],
        (
            (
                t["id"],
                t["name"],
                scopes_text(t),
                when(t["created_at"]),
                expiry(t),
                last_used(t),
                state(t),
            )
            for t in tokens
        ),
    )


@app.command()
def revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id (the 12 characters after tfk_).")],
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Revoke an API token: it is refused from the next request on."""
    if token_id.startswith("tfk_"):
        token_id = token_id[4:16]  # a whole token was pasted: its id
    with Client(load_settings({"data_dir": data_dir})) as api:
        body = api.json("DELETE", f"/v1/tokens/{token_id}")
    if as_json:
        print_json(body)
        return
    console.print(f"revoked {body['id']} ({body['name']})")
