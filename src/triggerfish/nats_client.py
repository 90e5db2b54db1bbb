"""Opening a connection to a NATS server without leaving its socket open on failure.

``nats.connect`` of nats-py keeps the socket it opened when the handshake then fails
or is cancelled (a server slow to send its INFO, a node stopped while a sink
connects): the socket stays open until the garbage collector finds it, and is then
reported as an unclosed ``StreamWriter``. ``connect`` makes the client itself, so that
it can close it whenever connecting does not finish, and every NATS connection of
Triggerfish (the bus, the sources, the sinks) opens through it.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nats.aio.client import Client


async def connect(url: str, **options: Any) -> Client:
    """A connected client for ``url`` (``options`` as nats-py's ``connect`` takes them);
    when connecting raises or is cancelled, the socket is closed before it propagates."""
    from nats.aio.client import Client

    client = Client()
    try:
        await client.connect(url, **options)
    except BaseException:
        with contextlib.suppress(Exception):
            await client.close()
        raise
    return client
