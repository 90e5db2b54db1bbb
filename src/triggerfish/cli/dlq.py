"""``triggerfish dlq``: dead-lettered events, and redriving them after a fix."""

from __future__ import annotations

from typing import Annotated

import typer

from triggerfish.cli.client import Client
from triggerfish.cli.options import DataDirOpt
from triggerfish.cli.output import console, print_json, table, when
from triggerfish.config import load_settings

app = typer.Typer(no_args_is_help=True)


@app.command("list")
def list_(
    topic: Annotated[str | None, typer.Argument(help="one dead-letter topic")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n")] = 50,
    data_dir: DataDirOpt = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Dead-lettered events not yet redriven, with their errors."""
    params: dict[str, str | int] = {"limit": limit}
    if topic:
        params["topic"] = topic
    with Client(load_settings({"data_dir": data_dir})) as api:
        body = api.json("GET", "/v1/dlq", params=params)
    if as_json:
        print_json(body["dead_letters"])
        return
    for dead in body["dead_letters"]:
        if topic is None and not dead["pending"]:
            continue
        table(
            f"{dead['topic']}: {dead['pending']} pending",
            ["offset", "dead since", "event id", "type", "trigger", "attempts", "error"],
            (
                (
                    item["offset"],
                    when(item["published_at"]),
                    item["event"]["id"],
                    item["event"]["type"],
                    item["event"].get("errortrigger"),
                    item["event"].get("errorattempts"),
                    f"{item['event'].get('errortype')}: {item['event'].get('errormessage')}",
                )
                for item in dead["events"]
            ),
        )


@app.command()
def redrive(
    topic: Annotated[str, typer.Argument(help="the dead-letter topic")],
    limit: Annotated[int, typer.Option("--limit", "-n")] = 1000,
    event: Annotated[
        str | None, typer.Option("--event", help="redrive this event id alone")
    ] = None,
    data_dir: DataDirOpt = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Send dead-lettered events back to the triggers they failed in: every one waiting,
    or with --event the one of that id alone (the others stay)."""
    params: dict[str, str | int] = {"limit": limit} if event is None else {"event": event}
    with Client(load_settings({"data_dir": data_dir})) as api:
        body = api.json("POST", f"/v1/dlq/{topic}/redrive", params=params)
    if as_json:
        print_json(body)
        return
    if event is not None:
        if body["redriven"]:
            console.print(f"redriven event {event} from {topic}")
        else:
            console.print(f"event {event} skipped: its trigger no longer exists")
        return
    console.print(f"redriven {body['redriven']} event(s) from {topic}")
    if body["skipped"]:
        console.print(f"{body['skipped']} skipped: their trigger no longer exists")
