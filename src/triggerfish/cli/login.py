"""``triggerfish login``, ``logout`` and ``context``: save the servers a person uses,
and choose the one commands talk to (the order is in ``cli.contexts``).

Nothing here prints a whole token: ``context ls`` and ``context show`` mask them.
"""

from __future__ import annotations

import getpass
import sys
from typing import Annotated, Any

import typer

from triggerfish.cli.client import Client, CliError, find_target
from triggerfish.cli.contexts import (
    DEFAULT_PROFILE,
    Contexts,
    Profile,
    Target,
    check_profile_name,
    mask_token,
)
from triggerfish.cli.options import DataDirOpt, JsonOpt
from triggerfish.cli.output import console, print_json, table
from triggerfish.cli.root import selection
from triggerfish.config import load_settings
from triggerfish.errors import ConfigError

app = typer.Typer(no_args_is_help=True)


def _profile_asked() -> str:
    return selection.profile or load_settings().profile


def _read_token(token: str | None, token_stdin: bool) -> str:
    if token is not None and token_stdin:
        raise CliError("give --token or --token-stdin, not both", 2)
    if token_stdin:
        token = sys.stdin.read()
    elif token is None:
        if not sys.stdin.isatty():
            raise CliError(
                "no token: give --token TOKEN, or pipe it in with --token-stdin "
                "(a server's admin token is in its data directory, in admin.token)",
                2,
            )
        token = getpass.getpass("API token: ")
    token = token.strip()
    if not token:
        raise CliError("the token is empty: give the API token the server accepts", 2)
    return token


def login(
    url: Annotated[str, typer.Argument(help="The server, such as http://127.0.0.1:8080.")],
    token: Annotated[
        str | None, typer.Option("--token", help="An API token (tfk_...).", show_default=False)
    ] = None,
    token_stdin: Annotated[
        bool, typer.Option("--token-stdin", help="Read the token from standard input.")
    ] = False,
) -> None:
    """Save a server and its token as a profile, and make it the current context.

    The server must answer and accept the token first. --profile NAME names the profile
    (else "default"); a later login with the same name replaces it.

    triggerfish login https://fn.example.com --token-stdin --profile prod < token.txt
    """
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise CliError(f"{url!r} is not a URL: expected one such as http://127.0.0.1:8080", 2)
    name = check_profile_name(_profile_asked() or DEFAULT_PROFILE)
    secret = _read_token(token, token_stdin)
    with Client(target=Target(url, secret, "login", "--token"), timeout=15.0) as api:
        try:
            who = api.json("GET", "/v1/whoami")
        except CliError as exc:
            if exc.code == 4:
                raise CliError(f"{url} refused the token: {exc}", 4) from None
            if exc.code == 5:
                raise CliError(
                    f"cannot reach {url}: is the server running there, and is the URL right?", 5
                ) from None
            if exc.code == 3:
                raise CliError(f"{url} is not a Triggerfish server (no /v1/whoami)", 3) from None
            raise
    if not isinstance(who, dict):
        raise CliError(f"{url} is not a Triggerfish server (unexpected /v1/whoami answer)", 8)
    contexts = Contexts.load()
    contexts.profiles[name] = Profile(name, url, secret)
    contexts.current = name
    contexts.save()
    console.print(
        f"logged in to {url} as {who.get('label') or who.get('name') or who.get('id')}; "
        f"saved as profile {name}, now the current context (in {contexts.path})",
        markup=False,
    )


def logout() -> None:
    """Forget a saved profile and its token (--profile NAME, else the current context)."""
    contexts = Contexts.load()
    name = _profile_asked() or contexts.current
    if not name:
        raise CliError("no current context to log out of: name one with --profile NAME", 2)
    profile = contexts.get(name)
    del contexts.profiles[name]
    if contexts.current == name:
        contexts.current = ""
    contexts.save()
    console.print(f"logged out of {profile.url} (profile {name} removed)", markup=False)


@app.command("ls")
def ls(as_json: JsonOpt = False) -> None:
    """The saved profiles; the current context is marked with *."""
    contexts = Contexts.load()
    rows = [
        {
            "name": p.name,
            "url": p.url,
            "token": mask_token(p.token),
            "current": p.name == contexts.current,
        }
        for p in sorted(contexts.profiles.values(), key=lambda p: p.name)
    ]
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("no saved contexts: save one with `triggerfish login URL`", markup=False)
        return
    table(
        None,
        ["current", "name", "url", "token"],
        (("*" if r["current"] else "", r["name"], r["url"], r["token"]) for r in rows),
    )


def _saved_names(incomplete: str) -> list[str]:
    """Shell completion of a profile name."""
    try:
        names = Contexts.load().profiles
    except ConfigError:
        return []
    return sorted(n for n in names if n.startswith(incomplete))


@app.command("use")
def use(
    name: Annotated[str, typer.Argument(help="A saved profile.", autocompletion=_saved_names)],
) -> None:
    """Make NAME the current context: commands talk to its server from now on."""
    contexts = Contexts.load()
    profile = contexts.get(name)
    contexts.current = name
    contexts.save()
    console.print(f"current context: {name} ({profile.url})", markup=False)


@app.command("unset")
def unset() -> None:
    """Have no current context: commands find the local server again."""
    contexts = Contexts.load()
    contexts.current = ""
    contexts.save()
    console.print("no current context: commands use the local server", markup=False)


@app.command("show")
def show(data_dir: DataDirOpt = None, as_json: JsonOpt = False) -> None:
    """The server and token this command line would use, and why."""
    target = find_target(load_settings({"data_dir": data_dir}))
    body: dict[str, Any] = {
        "url": target.url,
        "from": target.source,
        "token": mask_token(target.token),
        "token_from": target.token_source,
    }
    if as_json:
        print_json(body)
        return
    console.print(f"server: {target.url}  (from {target.source})", markup=False)
    console.print(f"token:  {body['token']}  (from {target.token_source})", markup=False)
