"""A TCP proxy between a node and a server of this machine, that a test can cut and
restore: the outage of a server (PostgreSQL, say) without stopping the server that
other tests share.

It runs an asyncio loop of its own on a thread, so a synchronous test drives it with
plain calls. ``cut()`` closes every connection it carries (abruptly, as a server that
went away) and stops listening, so new connections are refused; ``restore()`` listens
again on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, TypeVar

from support.services import free_port

_T = TypeVar("_T")
_CHUNK = 64 * 1024


class TcpProxy:
    def __init__(self, upstream: tuple[str, int], *, host: str = "127.0.0.1") -> None:
        self.upstream = upstream
        self.host = host
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"proxy :{self.port}", daemon=True
        )
        self._server: asyncio.Server | None = None
        self._transports: set[asyncio.WriteTransport] = set()  # both sides of each

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> TcpProxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def cut(self) -> None:
        """Close every connection and refuse new ones until ``restore``."""
        self._call(self._cut())

    def restore(self) -> None:
        self._call(self._listen())

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _call(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._carry, self.host, self.port, reuse_address=True
            )

    async def _cut(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for transport in list(self._transports):
            transport.abort()  # no orderly close: the peer sees the connection reset
        self._transports.clear()
        if server is not None:
            await server.wait_closed()

    async def _shutdown(self) -> None:
        await self._cut()
        carrying = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in carrying:
            task.cancel()
        await asyncio.gather(*carrying, return_exceptions=True)

    async def _carry(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        try:
            server_in, server_out = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_out.transport.abort()
            return
        if self._server is None:  # cut while connecting
            client_out.transport.abort()
            server_out.transport.abort()
            return
        self._transports.update((client_out.transport, server_out.transport))
        try:
            await asyncio.gather(
                _pipe(client_in, server_out), _pipe(server_in, client_out), return_exceptions=True
            )
        finally:
            for writer in (client_out, server_out):
                self._transports.discard(writer.transport)
                writer.transport.abort()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy ``source`` to ``sink`` until either side closes; then close the other."""
    try:
        while chunk := await source.read(_CHUNK):
            sink.write(chunk)
            await sink.drain()
    finally:
        with contextlib.suppress(Exception):
            sink.transport.abort()
