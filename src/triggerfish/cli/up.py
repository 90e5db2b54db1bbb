"""``triggerfish up``: one process serving the API, the bus, the dispatcher and workers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from triggerfish.cli.client import reach
from triggerfish.cli.output import console
from triggerfish.config import load_settings

if TYPE_CHECKING:
    from triggerfish.functions.manifest import Manifest
    from triggerfish.node import Node


def drive_hints(manifest: Manifest, command: Callable[[str], str] = str) -> list[str]:
    """Commands that set the deployed functions going: one publish per topic trigger
    (with the first event type its pattern asks for), then where to look; ``command``
    adds what they need to reach the server (``cli.client.reach``)."""
    hints = []
    for name, config in manifest.functions.items():
        for trigger in config.triggers:
            if trigger.topic is None:
                continue
            wanted = (trigger.pattern or {}).get("type")
            event_type = wanted[0] if isinstance(wanted, list) and wanted else "example"
            if not isinstance(event_type, str):
                event_type = "example"
            publish = command(
                f"triggerfish publish {trigger.topic} --type {event_type} --source cli "
                "--data '{}'"
            )
            hints.append(f"  {publish}    # runs {name}")
    if not hints:
        return []
    look = ("triggerfish invocations", "triggerfish logs FUNCTION -f", "triggerfish ls")
    return ["drive it from another terminal:", *hints,
            "  " + "; ".join(command(c) for c in look)]  # fmt: skip


def up(
    host: Annotated[str | None, typer.Option(help="Address to listen on [127.0.0.1].")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on [8080].")] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Where state lives [./.triggerfish].")
    ] = None,
    deploy: Annotated[
        Path | None,
        typer.Option(
            "--deploy",
            help="Deploy this project (triggerfish.yaml, app.py or their folder) once started.",
        ),
    ] = None,
    log_level: Annotated[str | None, typer.Option(help="debug, info, warning, error")] = None,
    log_format: Annotated[
        str | None, typer.Option("--log-format", help="Server log lines: text or json [text].")
    ] = None,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            help="Store URL: sqlite:///path/store.db [in the data dir] or postgresql://...",
        ),
    ] = None,
    bus: Annotated[
        str | None,
        typer.Option(
            "--bus", help="Bus URL: sqlite:///path/bus.db [in the data dir] or nats://host:4222"
        ),
    ] = None,
) -> None:
    """Start Triggerfish: on its embedded defaults (SQLite store and bus), or as a node of
    a cluster with a PostgreSQL store and a NATS JetStream bus shared by every node."""
    # The server's modules load here, when it starts: other commands do without them.
    from triggerfish.api.app import create_asgi
    from triggerfish.cli.serving import Server, listening, server_config
    from triggerfish.functions.project import load_project
    from triggerfish.node import Node, reach_backends
    from triggerfish.observe.logs import configure_logging

    settings = load_settings(
        {
            "host": host,
            "port": port,
            "data_dir": data_dir,
            "log_level": log_level,
            "log_format": log_format,
            "store_url": store,
            "bus_url": bus,
        }
    )
    configure_logging(settings.log_level, settings.log_format)
    if settings.store_url or settings.bus_url:
        # A store or bus on a server that cannot be reached stops here, with one line
        # that names it (the embedded files in the data directory need no such check).
        asyncio.run(reach_backends(settings))
    node = Node(settings)

    async def after_start(started: Node) -> None:
        # Commands given the same data directory find this server, whatever its port.
        try:
            settings.server_url_path.write_text(settings.listen_url + "\n")
        except OSError as exc:  # a full disk: serve all the same (observe/disk.py)
            console.print(f"cannot record the server's URL in the data directory: {exc}")
        command = reach(settings)
        if started.admin_token:
            console.print(
                "[bold]admin token[/] (shown once; kept in "
                f"{settings.token_path} with mode 0600):\n  {started.admin_token}"
            )
        if deploy is not None:
            project = load_project(deploy)
            for result in await started.control.deploy_manifest(project):
                state = "new version" if result.created else "unchanged"
                console.print(f"deployed {result.function} {result.version} ({state})")
                for note in result.notes:
                    console.print(f"{result.function}: {note}", markup=False, soft_wrap=True)
            for hint in drive_hints(project, command):
                console.print(hint, markup=False, soft_wrap=True)
        console.print(f"sandbox: {started.sandbox.level}", markup=False, soft_wrap=True)
        console.print(f"Triggerfish is up at {settings.listen_url} (data in {settings.data_dir})")
        console.print(
            f"use it from another terminal: {command('triggerfish ls')}",
            markup=False,
            soft_wrap=True,
        )

    config = server_config(create_asgi(node, on_start=after_start), settings)
    server = Server(config)
    server.run(sockets=[listening(config)])
    if not server.started:
        raise SystemExit(1)
