"""The ``triggerfish`` command.

Every command but ``up`` and ``pattern`` talks to a server over HTTP: ``TRIGGERFISH_URL``
with ``TRIGGERFISH_TOKEN``, a saved context (``triggerfish login``), or the local one of
the data directory (the order is in ``cli.contexts``). Exit codes: 0 success, 1 the
function failed, 2 bad input, 3 not found, 4 auth, 5 server unreachable, 6 throttled,
7 conflict, 8 server error.
"""

from __future__ import annotations

import base64
import functools
import io
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.status import Status

from triggerfish.cli import aliases, costs, dlq, keys, nodes, root, runtimes, tokens, trace, up
from triggerfish.cli import backup as backup_cli
from triggerfish.cli import brokers as brokers_cli
from triggerfish.cli import dev as dev_cli
from triggerfish.cli import executions as executions_cli
from triggerfish.cli import export as export_cli
from triggerfish.cli import functions as functions_cli
from triggerfish.cli import init as init_cli
from triggerfish.cli import login as login_cli
from triggerfish.cli import secrets as secrets_cli
from triggerfish.cli import status as status_cli
from triggerfish.cli import webhooks as webhooks_cli
from triggerfish.cli.client import Client, CliError
from triggerfish.cli.options import DataDirOpt, JsonOpt
from triggerfish.cli.output import console, duration, errors, print_json, table, when
from triggerfish.cli.pattern import app as pattern_app
from triggerfish.cli.template_report import outputs as template_outputs
from triggerfish.cli.template_report import print_outputs, read_template, unsupported_json
from triggerfish.config import Settings, load_settings
from triggerfish.errors import TriggerfishError
from triggerfish.events import new_event, to_structured_json
from triggerfish.functions.package import pack_function
from triggerfish.functions.project import load_project

app = typer.Typer(
    name="triggerfish",
    help="Run your functions when something happens.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    cls=root.RootGroup,
)
app.callback(epilog=root.FINDING_THE_SERVER)(root.root)
app.command("login")(login_cli.login)
app.command("logout")(login_cli.logout)
app.add_typer(login_cli.app, name="context", help="Saved servers: list, choose, show.")
app.command("up")(up.up)
app.command("dev")(dev_cli.dev)
app.command("init")(init_cli.init)
app.command("ls")(functions_cli.ls)
app.command("costs")(costs.costs)
app.command("nodes")(nodes.nodes)
app.command("status")(status_cli.status)
app.command("trace")(trace.trace)
app.command("backup")(backup_cli.backup)
app.command("export")(export_cli.export)
app.command("restore")(backup_cli.restore)
app.add_typer(pattern_app, name="pattern", help="Test event patterns.")
app.add_typer(dlq.app, name="dlq", help="Inspect and redrive dead-lettered events.")
app.add_typer(executions_cli.app, name="executions", help="Durable executions and their steps.")
app.add_typer(keys.app, name="keys", help="Access keys for the S3 and Lambda APIs.")
app.add_typer(tokens.app, name="tokens", help="API tokens with scopes, resources and expiry.")
app.add_typer(
    secrets_cli.app, name="secrets", help="Secrets for functions' environments and webhooks."
)
app.add_typer(aliases.app, name="alias", help="Point aliases at versions: promote, roll back.")
app.add_typer(
    runtimes.app, name="runtimes", help="What functions get from this machine: the AWS SDK."
)
app.add_typer(
    functions_cli.app, name="functions", help="List functions, show one in full, remove one."
)
app.add_typer(webhooks_cli.app, name="webhooks", help="Inbound webhooks: list, show, set, remove.")
app.add_typer(brokers_cli.app, name="brokers", help="Brokers that emits and destinations send to.")
topics_app = typer.Typer(help="List, create and delete topics.", no_args_is_help=True)
app.add_typer(topics_app, name="topics")


def settings_for(data_dir: Path | None) -> Settings:
    return load_settings({"data_dir": data_dir})


def client(data_dir: Path | None = None) -> Client:
    return Client(settings_for(data_dir))


def read_json_arg(text: str, what: str) -> Any:
    """JSON text, or ``@file``, or ``-`` for standard input."""
    if text == "-":
        text = typer.get_text_stream("stdin").read()
    elif text.startswith("@"):
        try:
            text = Path(text[1:]).read_text()
        except OSError as exc:
            raise CliError(f"{what}: cannot read {text[1:]}: {exc.strerror}", 2) from None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise CliError(f"{what} is not valid JSON: {exc}", 2) from None


@app.command()
def deploy(
    path: Annotated[
        Path,
        typer.Argument(
            help="triggerfish.yaml or its folder, an app.py, or module:app (docs/sdk.md)"
        ),
    ] = Path("."),
    prune: Annotated[
        bool,
        typer.Option(
            "--prune",
            help="Then remove the functions the server has that the manifest does not declare "
            "(functions only: topics, webhooks and brokers stay).",
        ),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="With --prune: deploy nothing, list what --prune would remove."
        ),
    ] = False,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="For an AWS template: refuse the deploy when any of it is not carried out.",
        ),
    ] = False,
    parameter_overrides: Annotated[
        list[str] | None,
        typer.Option(
            "--parameter-overrides",
            help="For an AWS template: NAME=VALUE for its Parameters ('A=1 B=2', or repeated).",
        ),
    ] = None,
    stage: Annotated[
        str | None,
        typer.Option(
            "--stage", help="For a serverless.yml: the stage (${opt:stage}, ${sls:stage})."
        ),
    ] = None,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Deploy the functions and topics of a manifest (triggerfish.yaml), or of an AWS SAM
    template as it is (docs/migrate.md)."""
    if dry_run and not prune:
        raise CliError("--dry-run shows what --prune would remove; give both", 2)
    if stage is not None:
        parameter_overrides = [*(parameter_overrides or []), f"stage={stage}"]
    template = read_template(path, parameter_overrides, strict=strict, quiet=as_json)
    manifest = template.manifest if template is not None else load_project(path)
    if dry_run:
        _prune(set(manifest.functions), data_dir, as_json=as_json, dry_run=True)
        return
    results = []
    with client(data_dir) as api:
        for topic, topic_config in manifest.topics.items():
            api.json("PUT", f"/v1/topics/{topic}", json={"retention": topic_config.retention})
        for webhook, webhook_config in manifest.webhooks.items():
            api.json("PUT", f"/v1/webhooks/{webhook}", json=webhook_config.model_dump(mode="json"))
        for broker, broker_config in manifest.brokers.items():
            api.json("PUT", f"/v1/brokers/{broker}", json=broker_config.model_dump(mode="json"))
        for name, config in manifest.functions.items():
            code_dir = manifest.code_dir(name)
            with console.status(f"packaging and deploying {name} ...") as status:
                code_zip = pack_function(code_dir, manifest.layer_dirs(name))
                request = functools.partial(
                    api.json,
                    "PUT",
                    f"/v1/functions/{name}",
                    data={"config": orjson.dumps(config.model_dump(mode="json")).decode()},
                    files={"code": ("code.zip", io.BytesIO(code_zip), "application/zip")},
                    timeout=DEPLOY_TIMEOUT,
                )
                if any((code_dir / f).is_file() for f in ("requirements.txt", "pyproject.toml")):
                    body = _with_build_log(request, name, data_dir, status, quiet=as_json)
                else:
                    body = request()
            results.append(body)
        server_url = api.url
    pruned = _prune(set(manifest.functions), data_dir, as_json=as_json) if prune else None
    if as_json:
        out = {"topics": list(manifest.topics), "functions": results}
        if template is not None:
            out["outputs"] = template_outputs(template, server_url)
            out["unsupported"] = unsupported_json(template)
        print_json(out if pruned is None else {**out, "pruned": pruned})
        return
    table(
        "deployed",
        [
            "function",
            "version",
            "#",
            "changed",
            "dependencies",
            "triggers added",
            "triggers removed",
        ],
        (
            (
                r["function"],
                r["version"],
                r["number"],
                "yes" if r["created"] else "no",
                _build_note(r.get("build")),
                ", ".join(r["triggers_added"]),
                ", ".join(r["triggers_removed"]),
            )
            for r in results
        ),
    )
    for r in results:
        for note in r.get("notes", ()):
            console.print(f"{r['function']}: {note}", markup=False, soft_wrap=True)
    if pruned is not None:
        _print_pruned(pruned, dry_run=False)
    if template is not None:
        print_outputs(template, server_url)


def _prune(
    declared: set[str], data_dir: Path | None, *, as_json: bool, dry_run: bool = False
) -> list[str]:
    """Remove (or with ``dry_run`` only list) the functions on the server that are not
    ``declared``; only functions, never topics, webhooks or brokers."""
    with client(data_dir) as api:
        existing = [f["name"] for f in api.json("GET", "/v1/functions")["functions"]]
        extra = sorted(name for name in existing if name not in declared)
        if not dry_run:
            for name in extra:
                api.request("DELETE", f"/v1/functions/{name}")
    if dry_run:
        if as_json:
            print_json({"would_prune": extra})
        else:
            _print_pruned(extra, dry_run=True)
    return extra


def _print_pruned(names: list[str], *, dry_run: bool) -> None:
    verb = "would remove" if dry_run else "removed"
    if not names:
        console.print("prune: every function on the server is declared; nothing to remove")
        return
    console.print(
        f"prune: {verb} {len(names)} function(s) the manifest does not declare, with their "
        f"versions, aliases and triggers: {', '.join(names)} (topics, webhooks and brokers "
        "are never pruned)",
        markup=False,
        soft_wrap=True,
    )


DEPLOY_TIMEOUT = 960.0  # seconds: a deploy may install dependencies


def _with_build_log(
    request: Callable[[], Any], name: str, data_dir: Path | None, status: Status, *, quiet: bool
) -> Any:
    """Run the deploy request while showing the server's build log as it grows."""
    offset, seen = 0, False
    with ThreadPoolExecutor(1) as pool, client(data_dir) as poll:
        future = pool.submit(request)
        while not wait([future], timeout=0.3).done or seen:
            try:
                build = poll.json("GET", f"/v1/functions/{name}/build", params={"offset": offset})
            except CliError:
                build = {"status": "unknown"}  # the server may not know the function yet
            if build["status"] == "running" or seen:
                status.update(f"installing the dependencies of {name} ...")
                if not quiet:
                    for line in build.get("log", "").splitlines():
                        errors.print(f"  {line}", markup=False, style="dim")
                offset = build.get("next_offset", offset)
                if future.done():
                    break  # the rest of the log was printed just now
                seen = True
        return future.result()


def _build_note(build: dict[str, Any] | None) -> str:
    if not build:
        return ""
    return "reused" if build.get("cached") else f"built in {build.get('seconds', 0):.1f} s"


@app.command()
def invoke(
    name: Annotated[str, typer.Argument(help="function, optionally name:qualifier")],
    data: Annotated[str, typer.Option("--data", "-d", help="JSON payload, @file or -")] = "{}",
    async_: Annotated[bool, typer.Option("--async", help="Queue it and return at once.")] = False,
    show_log: Annotated[bool, typer.Option("--log", help="Print the invocation's log.")] = False,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Invoke a function; prints its result (exit 1 when the function failed)."""
    function, _, qualifier = name.partition(":")
    payload = orjson.dumps(read_json_arg(data, "--data"))
    params: dict[str, Any] = {"qualifier": qualifier or "live"}
    if async_:
        params["mode"] = "async"
    if show_log:
        params["log"] = "true"
    with client(data_dir) as api:
        response = api.request(
            "POST",
            f"/v1/functions/{function}/invoke",
            content=payload,
            params=params,
            headers={"Content-Type": "application/json"},
        )
    if async_:
        body = response.json()
        print_json(body) if as_json else console.print(f"queued as event {body['event_id']}")
        return
    failed = "x-triggerfish-function-error" in response.headers
    if show_log and "x-triggerfish-log-result" in response.headers:
        errors.print(
            base64.b64decode(response.headers["x-triggerfish-log-result"]).decode(), markup=False
        )
    if as_json:
        print_json(
            {
                "invocation": response.headers.get("x-triggerfish-invocation-id"),
                "status": response.headers.get("x-triggerfish-status"),
                "result": response.json(),
            }
        )
    else:
        console.print(response.text, markup=False)
    if failed:
        raise typer.Exit(1)


@app.command()
def publish(
    topic: str,
    type_: Annotated[str, typer.Option("--type", "-t", help="CloudEvents type")],
    source: Annotated[str, typer.Option("--source", "-s", help="CloudEvents source")] = "cli",
    data: Annotated[str, typer.Option("--data", "-d", help="JSON data, @file or -")] = "null",
    event_id: Annotated[str | None, typer.Option("--id", help="event id (default: new)")] = None,
    subject: Annotated[str | None, typer.Option("--subject")] = None,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Publish one CloudEvent to a topic."""
    event = new_event(type_, source, read_json_arg(data, "--data"), subject=subject, id=event_id)
    with client(data_dir) as api:
        body = api.json(
            "POST",
            f"/v1/topics/{topic}/events",
            content=to_structured_json(event),
            headers={"Content-Type": "application/cloudevents+json"},
        )
    if as_json:
        print_json(body)
        return
    for item in body["accepted"]:
        note = " (duplicate: already published, nothing stored)" if item["duplicate"] else ""
        console.print(f"published {item['id']} to {topic} at offset {item['offset']}{note}")


@topics_app.command("ls")
def topics_ls(
    all_: Annotated[
        bool,
        typer.Option("--all", "-a", help="Show Triggerfish's own topics too (marked internal)."),
    ] = False,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List topics (without Triggerfish's own, unless --all)."""
    with client(data_dir) as api:
        topics = api.json("GET", "/v1/topics", params={"internal": "true"} if all_ else {})
    if all_:
        topics = [{**t, "internal": internal_topic(t["name"])} for t in topics["topics"]]
    else:
        topics = [t for t in topics["topics"] if not internal_topic(t["name"])]
    if as_json:
        print_json(topics)
        return
    table(
        "topics",
        ["name", "events", "first", "last", "retention (s)", *(["internal"] if all_ else [])],
        (
            (
                t["name"],
                t["count"],
                t["first_offset"],
                t["last_offset"],
                t["retention"],
                *(["yes" if t["internal"] else ""] if all_ else []),
            )
            for t in topics
        ),
    )


def internal_topic(name: str) -> bool:
    """Triggerfish's own topics: ``_invoke.<function>``, ``_redrive.<trigger>`` (a leading
    '_', which people's topic names cannot have), and the dead letters of asynchronous
    invocations, ``<function>._async.dlq``, which ``triggerfish dlq list`` shows."""
    return name.startswith("_") or name.endswith("._async.dlq")


@topics_app.command("create")
def topics_create(
    name: str,
    retention: Annotated[float | None, typer.Option(help="seconds to keep events")] = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Create a topic (or change its retention)."""
    with client(data_dir) as api:
        api.json("PUT", f"/v1/topics/{name}", json={"retention": retention})
    console.print(f"topic {name} ready")


@topics_app.command("delete")
def topics_delete(name: str, data_dir: DataDirOpt = None) -> None:
    """Delete a topic and its events."""
    with client(data_dir) as api:
        api.request("DELETE", f"/v1/topics/{name}")
    console.print(f"topic {name} deleted")


@app.command()
def invocations(
    invocation_id: Annotated[str | None, typer.Argument(help="show one in full")] = None,
    function: Annotated[str | None, typer.Option("--function", "-f")] = None,
    status: Annotated[str | None, typer.Option("--status")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n")] = 20,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List recent invocations, newest first, or show one with its logs."""
    with client(data_dir) as api:
        if invocation_id:
            record = api.json("GET", f"/v1/invocations/{invocation_id}")
            if as_json:
                print_json(record)
                return
            for key, value in record.items():
                if key not in ("logs", "stack_trace", "result_base64"):
                    shown = when(value) if key.endswith("_at") else value
                    console.print(f"[bold]{key}[/]: {shown}")
            typer.echo(record.get("logs", ""))
            return
        params = {"function": function, "status": status, "limit": limit}
        records = api.json(
            "GET", "/v1/invocations", params={k: v for k, v in params.items() if v is not None}
        )
    if as_json:
        print_json(records["invocations"])
        return
    table(
        "invocations",
        ["id", "function", "version", "status", "started", "duration", "attempt", "cold", "error"],
        (
            (
                r["id"],
                r["function"],
                r["version"],
                r["status"],
                when(r["started_at"]),
                duration(r["duration_ms"]),
                r["attempt"],
                "yes" if r["cold_start"] else "",
                r["error_type"] or "",
            )
            for r in records["invocations"]
        ),
    )


@app.command()
def logs(
    name: Annotated[str, typer.Argument(help="function")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new ones.")] = False,
    limit: Annotated[int, typer.Option("--limit", "-n")] = 20,
    data_dir: DataDirOpt = None,
) -> None:
    """Print the logs of a function's recent invocations."""
    with client(data_dir) as api:
        recent = api.json(
            "GET", "/v1/invocations", params={"function": name, "limit": limit, "logs": "true"}
        )
        records = list(reversed(recent["invocations"]))
        cursor = max((r["recorded_id"] for r in records), default="0")
        for record in records:
            typer.echo(record["logs"], nl=False)  # as written: tabs and long lines kept
        while follow:
            time.sleep(0.5)
            page = api.json(
                "GET",
                "/v1/invocations",
                params={"function": name, "after": cursor, "logs": "true", "limit": 100},
            )
            for record in page["invocations"]:
                typer.echo(record["logs"], nl=False)
            cursor = page["next"] or cursor


@app.command()
def replay(
    topic: str,
    trigger: Annotated[str, typer.Option("--trigger", help="trigger id (see `triggerfish ls`)")],
    offset: Annotated[int | None, typer.Option("--offset", help="from this offset")] = None,
    since: Annotated[
        float | None, typer.Option("--since", help="unix time or -SECONDS ago")
    ] = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Deliver a topic's events again to one trigger, from an offset or a time."""
    if since is not None and since < 0:
        since = time.time() + since
    with client(data_dir) as api:
        body = api.json(
            "POST",
            f"/v1/topics/{topic}/replay",
            json={"trigger": trigger, "offset": offset, "since": since},
        )
    console.print(f"{body['requeued']} event(s) of {topic} will be delivered again to {trigger}")


def main() -> None:
    # An error goes out soft-wrapped, as one line that a terminal folds by itself: Rich
    # would break it at 80 columns where stderr is a pipe or a file, splitting a long path.
    try:
        app()
    except CliError as exc:
        errors.print(f"error: {exc}", markup=False, soft_wrap=True)
        raise SystemExit(exc.code) from None
    except TriggerfishError as exc:
        errors.print(f"error: {exc}", markup=False, soft_wrap=True)
        raise SystemExit(2) from None
