"""``triggerfish brokers``: the named brokers that emits and destinations send to
(``ls``, ``show``, ``set``, ``rm``), as the manifest's ``brokers:`` declares them.

``set`` replaces the whole definition: from ``--file`` (one broker's settings, or a
manifest with it under ``brokers:``) and options, which win over the file; ``--option
KEY=VALUE`` gives the settings of one kind (``maxlen=10000``, ``exchange=events``).
A url is shown with its password hidden.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from triggerfish.cli.client import Client, CliError
from triggerfish.cli.definitions import broker, given, read_definition
from triggerfish.cli.options import DataDirOpt, JsonOpt
from triggerfish.cli.output import console, print_json, table, when
from triggerfish.config import load_settings

app = typer.Typer(no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="the broker")]


def _client(data_dir: Path | None) -> Client:
    return Client(load_settings({"data_dir": data_dir}))


def _stat(item: dict[str, Any], key: str) -> Any:
    stats = item.get("stats") or {}
    return stats.get(key, "")


def _state(item: dict[str, Any]) -> str:
    stats = item.get("stats")
    if not stats:
        return "starting"
    return "connected" if stats.get("connected") else "not connected"


def options(pairs: list[str] | None) -> dict[str, Any]:
    """``KEY=VALUE`` pairs as settings; each value is read as YAML (``true``, ``10``)."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise CliError(f"--option {pair!r}: expected KEY=VALUE, such as maxlen=10000", 2)
        try:
            out[key.strip()] = yaml.safe_load(value) if value else ""
        except yaml.YAMLError:
            out[key.strip()] = value
    return out


@app.command("ls")
def ls(data_dir: DataDirOpt = None, as_json: JsonOpt = False) -> None:
    """Brokers, with their relays' state and counters."""
    with _client(data_dir) as api:
        brokers = api.json("GET", "/v1/brokers")["brokers"]
    if as_json:
        print_json(brokers)
        return
    table(
        "brokers",
        ["name", "kind", "url", "format", "state", "published", "pending", "failures"],
        (
            (
                b["name"],
                b["kind"],
                b["url"],
                b["format"],
                _state(b),
                _stat(b, "published"),
                _stat(b, "pending"),
                _stat(b, "failures"),
            )
            for b in brokers
        ),
    )


@app.command("show")
def show(name: NameArg, data_dir: DataDirOpt = None, as_json: JsonOpt = False) -> None:
    """One broker: its settings and its relay's counters."""
    with _client(data_dir) as api:
        item = api.json("GET", f"/v1/brokers/{name}")
    if as_json:
        print_json(item)
        return
    stats = item.get("stats") or {}
    console.print(f"[bold]{name}[/]: {item['kind']} at {item['url']} ({_state(item)})")
    settings = {k: v for k, v in item.items() if k not in ("name", "kind", "url", "stats")}
    console.print(yaml.safe_dump(settings, sort_keys=False).rstrip(), markup=False, soft_wrap=True)
    if stats:
        console.print(
            f"published {stats.get('published', 0)}, pending {stats.get('pending', 0)}, "
            f"failures {stats.get('failures', 0)}, rejected {stats.get('rejected', 0)}, "
            f"last published {when(stats.get('last_published_at')) or 'never'}",
            markup=False,
            soft_wrap=True,
        )
        if stats.get("last_error"):
            console.print(f"last error: {stats['last_error']}", markup=False, soft_wrap=True)


@app.command("set")
def set_(
    name: NameArg,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="JSON or YAML: the settings, or a manifest")
    ] = None,
    kind: Annotated[
        str | None, typer.Option(help="redis, nats, jetstream, amqp, mqtt, postgres ...")
    ] = None,
    url: Annotated[str | None, typer.Option(help="the broker's url; ${VAR} for secrets")] = None,
    format_: Annotated[str | None, typer.Option("--format", help="raw or cloudevent")] = None,
    option: Annotated[
        list[str] | None,
        typer.Option("--option", "-o", help="KEY=VALUE, a setting of the kind. Repeat for more."),
    ] = None,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create or replace a broker (its relay restarts with the new settings).

    triggerfish brokers set cache --kind redis --url redis://127.0.0.1:6379 -o maxlen=10000
    """
    settings = read_definition(file, "brokers", name)
    settings.update(options(option))
    settings.update(given(kind=kind, url=url, format=format_))
    config = broker(name, settings, str(file) if file else "broker settings")
    with _client(data_dir) as api:
        item = api.json("PUT", f"/v1/brokers/{name}", json=config.model_dump(mode="json"))
    if as_json:
        print_json(item)
        return
    console.print(
        f"broker {name} ready: {item['kind']} at {item['url']}", markup=False, soft_wrap=True
    )


@app.command("rm")
def rm(name: NameArg, data_dir: DataDirOpt = None, as_json: JsonOpt = False) -> None:
    """Remove a broker and stop its relay; what still waits for it stays on its topic."""
    with _client(data_dir) as api:
        api.request("DELETE", f"/v1/brokers/{name}")
    if as_json:
        print_json({"removed": name})
        return
    console.print(f"removed broker {name}")
