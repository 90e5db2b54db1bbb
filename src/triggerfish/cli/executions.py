"""``triggerfish executions``: durable executions and the operations each checkpointed
(docs/durable.md)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from triggerfish.cli.client import Client
from triggerfish.cli.options import DataDirOpt, JsonOpt
from triggerfish.cli.output import console, print_json, table, when
from triggerfish.config import load_settings

app = typer.Typer(no_args_is_help=True)
SHOWN = 60  # characters of a result or error in a table


@app.command("ls")
def ls(
    function: Annotated[str | None, typer.Argument(help="the executions of one function")] = None,
    status: Annotated[
        list[str] | None,
        typer.Option("--status", "-s", help="RUNNING, SUCCEEDED, FAILED, TIMED_OUT or STOPPED"),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n")] = 50,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Durable executions, newest first."""
    params: dict[str, Any] = {"limit": limit}
    if function:
        params["function"] = function
    if status:
        params["status"] = [value.upper() for value in status]
    with Client(load_settings({"data_dir": data_dir})) as api:
        body = api.json("GET", "/v1/executions", params=params)
    if as_json:
        print_json(body)
        return
    rows = [
        (
            item["id"],
            item["function"],
            item["name"] if item["name"] != item["id"] else "",
            item["status"],
            when(item["started_at"]),
            _took(item["started_at"], item["ended_at"]),
        )
        for item in body["executions"]
    ]
    table(None, ["id", "function", "name", "status", "started", "took"], rows)


@app.command("show")
def show(
    execution: Annotated[str, typer.Argument(help="an execution id or ARN")],
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One execution: its input, outcome, and its operations with their timing."""
    with Client(load_settings({"data_dir": data_dir})) as api:
        body = api.json("GET", f"/v1/executions/{execution.rsplit('/', 1)[-1]}")
    if as_json:
        print_json(body)
        return
    out = console
    out.print(f"[bold]{body['arn']}[/bold]")
    out.print(f"status   {body['status']}")
    out.print(f"started  {when(body['started_at'])}")
    if body["ended_at"]:
        took = _took(body["started_at"], body["ended_at"])
        out.print(f"ended    {when(body['ended_at'])} (after {took})")
    out.print(f"input    {_short(body['input'])}")
    if body["result"] is not None:
        out.print(f"result   {_short(body['result'])}")
    if body["error"]:
        out.print(f"error    {_short(str(body['error']))}")
    start = body["started_at"]
    rows = []
    for op in body["operations"]:
        if op["type"] == "EXECUTION":
            continue
        outcome = op["result"] if op["error"] is None else op["error"]
        rows.append(
            (
                op["name"] or op["id"][:12],
                (op["sub_type"] or op["type"]).lower(),
                op["status"],
                _offset(start, op["started_at"]),
                _took(op["started_at"], op["ended_at"]),
                "" if op["attempt"] is None else str(op["attempt"]),
                _short("" if outcome is None else str(outcome)),
            )
        )
    table(None, ["operation", "kind", "status", "at", "took", "retries", "result"], rows)


def _took(start: float | None, end: float | None) -> str:
    if start is None or end is None:
        return ""
    return f"{end - start:.3f} s"


def _offset(start: float, at: float | None) -> str:
    return "" if at is None else f"+{at - start:.3f} s"


def _short(text: str) -> str:
    return text if len(text) <= SHOWN else text[: SHOWN - 1] + "…"
