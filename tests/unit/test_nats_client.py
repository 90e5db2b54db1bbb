"""Connecting to NATS closes the socket it opened when the handshake does not finish."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from support.waiting import until
from triggerfish import nats_client

pytest.importorskip("nats")


@asynccontextmanager
async def silent_server() -> AsyncIterator[tuple[str, asyncio.Event, Callable[[], bool]]]:
    """A TCP server that never sends NATS's INFO: the URL, an event set once a client
    connected, and whether every client it had has closed its socket."""
    connected = asyncio.Event()
    open_ones: list[asyncio.StreamReader] = []
    ended: list[asyncio.StreamReader] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        open_ones.append(reader)
        connected.set()
        await reader.read()  # until the client closes
        ended.append(reader)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"nats://127.0.0.1:{port}", connected, lambda: len(ended) == len(open_ones) > 0
    finally:
        server.close()


@pytest.fixture
def no_collection() -> object:
    """The garbage collector off: a socket left open stays open, as it would until the
    next collection, rather than being closed by chance during the test."""
    gc.disable()
    yield
    gc.enable()


@pytest.mark.usefixtures("no_collection")
async def test_a_handshake_that_times_out_closes_the_socket() -> None:
    async with silent_server() as (url, _connected, all_closed):
        with pytest.raises(TimeoutError):
            await nats_client.connect(url, allow_reconnect=False, connect_timeout=0.2)
        await until(all_closed, what="the server sees the client's socket closed")


@pytest.mark.usefixtures("no_collection")
async def test_a_connect_cancelled_midway_closes_the_socket() -> None:
    async with silent_server() as (url, connected, all_closed):
        attempt = asyncio.create_task(
            nats_client.connect(url, allow_reconnect=True, connect_timeout=30)
        )
        await asyncio.wait_for(connected.wait(), 5)
        attempt.cancel()
        with pytest.raises(asyncio.CancelledError):
            await attempt
        await until(all_closed, what="the server sees the client's socket closed")
