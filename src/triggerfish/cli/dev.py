"""``triggerfish dev``: a node for one project while it is written.

It starts an embedded node as ``up`` does, deploys the project (``load_project``: a
manifest, an ``app.py`` or ``module:app``), then watches the project's files: after a
save, the project is read again and what changed is deployed, so the next invocation
runs the new code. A save that breaks the project (a syntax error, a bad setting)
prints the error and leaves the running version in place. Invocations show in the
terminal as they end, with their log lines.

The project is read in this process (an App's module is imported here), in a thread,
so a slow import never holds up the node.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from triggerfish.config import load_settings


def dev(
    path: Annotated[
        Path, typer.Argument(help="triggerfish.yaml or its folder, an app.py, or module:app")
    ] = Path("."),
    port: Annotated[int | None, typer.Option(help="Port to listen on [8080].")] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Where state lives [./.triggerfish].")
    ] = None,
) -> None:
    """Run a node for a project, redeploy it on every save, and show its invocations
    and logs as they happen. Ctrl-C stops it."""
    from triggerfish.api.app import create_asgi
    from triggerfish.cli.dev_session import DevServer, DevSession
    from triggerfish.cli.serving import listening, server_config
    from triggerfish.functions.project import load_project
    from triggerfish.node import Node
    from triggerfish.observe.logs import configure_logging

    settings = load_settings({"port": port, "data_dir": data_dir})
    configure_logging(settings.log_level, settings.log_format)
    manifest = load_project(path)  # a broken project stops here, with its error
    node = Node(settings)
    session = DevSession(str(path), manifest, settings)
    config = server_config(create_asgi(node, on_start=session.start), settings)
    server = DevServer(config, session)
    server.run(sockets=[listening(config)])
    if not server.started:
        raise SystemExit(1)
