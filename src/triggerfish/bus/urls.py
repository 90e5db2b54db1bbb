"""Choosing the bus from its URL.

``sqlite:///path/bus.db`` is the embedded default of one node; ``nats://host:4222``
puts the node on NATS JetStream, shared by every node with the same URL. Options of
the NATS bus go in the query: ``?prefix=tf`` names its streams (several installations
may share one NATS server under different prefixes), ``?replicas=3`` copies each
stream on that many servers of a NATS cluster. Each backend's module, and so its
driver, is imported only when its URL is chosen.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from triggerfish.bus.base import Bus
from triggerfish.errors import ConfigError


def open_bus(url: str, *, dedupe_window: float, ack_wait: float = 30.0, vacuum: bool = True) -> Bus:
    """The bus for ``url``, not started yet; ConfigError for a URL it cannot serve.
    ``ack_wait``: the shortest lease a consumer group of a shared bus starts with (a
    group's lease only grows, to the longest one its consumers ask for). ``vacuum``: a
    new SQLite file gives freed space back (``SqliteBus``)."""
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if sep and scheme == "sqlite" and rest.startswith("/") and len(rest) > 1:
        from triggerfish.bus.sqlite import SqliteBus

        return SqliteBus(Path(rest[1:]), dedupe_window=dedupe_window, vacuum=vacuum)
    if sep and scheme in ("nats", "tls") and rest:
        from triggerfish.bus.nats import NatsBus

        parts = urlsplit(url)
        options = dict(parse_qsl(parts.query))
        unknown = sorted(set(options) - {"prefix", "replicas"})
        if unknown:
            raise ConfigError(
                f"bus URL {url!r}: unknown option(s) {', '.join(unknown)} (known: prefix, replicas)"
            )
        try:
            replicas = int(options.get("replicas", "1"))
        except ValueError:
            raise ConfigError(f"bus URL {url!r}: replicas must be a whole number") from None
        server = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        return NatsBus(
            server,
            dedupe_window=dedupe_window,
            prefix=options.get("prefix", "tf"),
            replicas=replicas,
            ack_wait=ack_wait,
        )
    raise ConfigError(
        f"bus URL {url!r}: expected sqlite:///path/bus.db (one node) or "
        "nats://host:4222 (NATS with JetStream, for a cluster)"
    )


def is_shared(url: str) -> bool:
    """Whether several nodes can share the bus at ``url``."""
    return url.partition("://")[0].lower() in ("nats", "tls")
