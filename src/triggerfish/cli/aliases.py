"""``triggerfish alias``: point names at versions, to promote gradually or roll back
without a deploy (``live`` is the alias deploys move and triggers follow by default).

``alias set`` pins the alias: deploys leave a pinned ``live`` where it is, until
``alias follow``. ``--weight 4=0.1`` sends a tenth of the invocations to version 4;
``--rollback-on "error_rate>0.05 over 5m"`` sends them all back to the main version
when version 4 fails more often than that.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from triggerfish.cli.client import Client, CliError
from triggerfish.cli.options import DataDirOpt, JsonOpt
from triggerfish.cli.output import console, print_json, table, when
from triggerfish.config import load_settings

app = typer.Typer(no_args_is_help=True)

WEIGHT_FORM = "VERSION=WEIGHT, e.g. 4=0.1 (a tenth of the invocations to version 4)"


def _routing_text(alias: dict[str, Any]) -> str:
    return ", ".join(
        f"version {number}: {weight:.4g} ({weight:.1%})"
        for number, weight in (alias.get("routing") or {}).items()
    )


def _show(alias: dict[str, Any]) -> str:
    text = f"{alias['function']}:{alias['alias']} -> version {alias['number']} ({alias['version']})"
    routing = _routing_text(alias)
    if routing:
        text += f", and {routing}"
    if alias.get("rollback"):
        text += f"; rolls back when {_rule_text(alias['rollback'])}"
    return text


def _rule_text(rule: dict[str, Any]) -> str:
    return (
        f"error_rate>{rule['max_error_rate']:g} over {rule['window']:g}s "
        f"(at least {rule['min_invocations']} invocations)"
    )


def _rolled_back_text(seen: dict[str, Any] | None) -> str:
    if not seen:
        return ""
    return (
        f"{when(seen['at'])}: version {seen['number']} failed {seen['errors']} of "
        f"{seen['invocations']} ({seen['error_rate']:.1%})"
    )


def _deploys_text(alias: dict[str, Any]) -> str:
    """Whether deploys move the alias (``live`` alone follows them)."""
    if alias.get("following"):
        return "move it"
    if alias["alias"] == "live":
        return f"pinned {when(alias.get('pinned_at'))}"
    return ""


def _routing(weights: list[str]) -> dict[str, float]:
    routing: dict[str, float] = {}
    for text in weights:
        version, sep, weight = text.partition("=")
        if not sep or not version.strip():
            raise CliError(f"--weight {text!r}: expected {WEIGHT_FORM}", 2)
        try:
            routing[version.strip()] = float(weight)
        except ValueError:
            raise CliError(
                f"--weight {text!r}: {weight!r} is not a number; {WEIGHT_FORM}", 2
            ) from None
    return routing


def _rollback(
    rollback_on: str | None,
    max_error_rate: float | None,
    window: str | None,
    min_invocations: int | None,
) -> str | dict[str, Any] | None:
    if rollback_on is not None:
        if max_error_rate is not None or window is not None:
            raise CliError("give --rollback-on, or --max-error-rate with --window, not both", 2)
        if min_invocations is None:
            return rollback_on
        return {"on": rollback_on, "min_invocations": min_invocations}
    if max_error_rate is None and window is None:
        if min_invocations is not None:
            raise CliError("--min-invocations goes with --max-error-rate and --window", 2)
        return None
    if max_error_rate is None or window is None:
        raise CliError("--max-error-rate and --window go together (e.g. 0.05 and 5m)", 2)
    rule: dict[str, Any] = {"max_error_rate": max_error_rate, "window": window}
    if min_invocations is not None:
        rule["min_invocations"] = min_invocations
    return rule


@app.command("set")
def set_(
    function: Annotated[str, typer.Argument(help="the function")],
    alias: Annotated[str, typer.Argument(help="the alias to create or move")],
    version: Annotated[str, typer.Argument(help="a version number or 12-character id")],
    weight: Annotated[
        list[str] | None,
        typer.Option(
            "--weight",
            help="send a share of the invocations to one more version: VERSION=WEIGHT "
            "(4=0.1); without it, every invocation runs VERSION",
        ),
    ] = None,
    rollback_on: Annotated[
        str | None,
        typer.Option(
            "--rollback-on",
            help='roll the weighted version back automatically: "error_rate>0.05 over 5m"',
        ),
    ] = None,
    max_error_rate: Annotated[
        float | None, typer.Option("--max-error-rate", help="roll back above this error rate")
    ] = None,
    window: Annotated[
        str | None, typer.Option("--window", help="over this window (30s, 5m, 1h)")
    ] = None,
    min_invocations: Annotated[
        int | None,
        typer.Option(
            "--min-invocations", help="only once the weighted version ran this often (20)"
        ),
    ] = None,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Point ALIAS at VERSION (creating it if needed) and pin it: deploys no longer
    move it (see `alias follow`)."""
    body: dict[str, Any] = {"version": version, "routing": _routing(weight or [])}
    rollback = _rollback(rollback_on, max_error_rate, window, min_invocations)
    if rollback is not None:
        body["rollback"] = rollback
    with Client(load_settings({"data_dir": data_dir})) as api:
        answer = api.json("PUT", f"/v1/functions/{function}/aliases/{alias}", json=body)
    if as_json:
        print_json(answer)
    else:
        console.print(_show(answer), markup=False, soft_wrap=True)


@app.command("follow")
def follow(
    function: Annotated[str, typer.Argument(help="the function")],
    alias: Annotated[str, typer.Argument(help="the alias that should follow deploys (live)")],
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Let deploys move ALIAS (live) again, from the next deploy on."""
    with Client(load_settings({"data_dir": data_dir})) as api:
        answer = api.json("POST", f"/v1/functions/{function}/aliases/{alias}/follow")
    if as_json:
        print_json(answer)
    else:
        console.print(f"{_show(answer)}; the next deploy moves it", markup=False, soft_wrap=True)


@app.command("ls")
def list_(
    function: Annotated[str, typer.Argument(help="the function")],
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The aliases of FUNCTION, the versions they point at, their weights, and the
    automatic rollbacks made."""
    with Client(load_settings({"data_dir": data_dir})) as api:
        body = api.json("GET", f"/v1/functions/{function}/aliases")
    if as_json:
        print_json(body["aliases"])
        return
    table(
        f"aliases of {function}",
        ["alias", "version", "id", "weights", "deploys", "rollback", "rolled back"],
        (
            (
                a["alias"],
                a["number"],
                a["version"],
                _routing_text(a),
                _deploys_text(a),
                _rule_text(a["rollback"]) if a.get("rollback") else "",
                _rolled_back_text(a.get("rolled_back")),
            )
            for a in body["aliases"]
        ),
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
