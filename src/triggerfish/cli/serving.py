"""How ``up`` and ``dev`` serve a node's application with uvicorn. Imported by those
commands only when they run, so that the other commands (``deploy``, ``publish`` ...)
start without loading the server."""

from __future__ import annotations

import socket
from importlib.util import find_spec
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from triggerfish.api.limits import limit_heads
from triggerfish.api.protocol import hot_path_protocol
from triggerfish.cli.output import errors
from triggerfish.config import Settings


def server_config(app: Any, settings: Settings) -> uvicorn.Config:
    """How ``up`` and ``dev`` serve a node's app."""
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        # The C parser and event loop (uvicorn[standard] brings them; a platform without
        # wheels for them falls back); no access log: the invocation records are the log.
        # The invoke and ingest fast path answers in the connection (``api.protocol``);
        # a request head is refused as it passes the header size (``api.limits``).
        http=limit_heads(hot_path_protocol(app), size=settings.header_size_limit),
        h11_max_incomplete_event_size=settings.header_size_limit,
        loop="uvloop" if find_spec("uvloop") else "asyncio",
        log_level=settings.log_level.lower(),
        # JSON lines: uvicorn's own records go through the handler set up above.
        log_config=None if settings.log_format == "json" else LOGGING_CONFIG,
        access_log=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace),
        lifespan="on",
    )


def listening(config: uvicorn.Config) -> socket.socket:
    """The server's socket, bound and listening before the node starts: a function the
    node runs as it starts (a durable execution whose wait ended while the node was
    down) reaches the node's API for its checkpoints at once, its requests answered as
    soon as the node is up. uvicorn alone would bind only after the start, and such a
    function's checkpoints would be refused. Exits when the address is taken."""
    host = config.host
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, config.port))
        sock.listen(config.backlog)
    except OSError as exc:
        sock.close()
        message = f"error: cannot listen on {host} port {config.port}: {exc.strerror or exc}"
        errors.print(message, markup=False, soft_wrap=True)
        raise SystemExit(1) from None
    return sock


class Server(uvicorn.Server):
    """Exits with status 0 after a graceful shutdown on SIGTERM/SIGINT, instead of
    raising the signal again once the node has drained (uvicorn's default)."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        captured = getattr(self, "_captured_signals", None)
        if isinstance(captured, list):
            captured.clear()
