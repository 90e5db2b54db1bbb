"""The link between a node and its source process: the messages and their framing.

The node tells the source process which broker sources to run (``Start``, ``Stop``)
and answers each of its ``Publish`` with ``Committed`` once the events are durable in
the bus (or with the error that kept them out). The source process acknowledges a
broker's messages only after that answer, reports each stopped source (``Stopped``)
and sends the sources' counters (``Stats``) for the node's metrics.

Each message is one msgpack frame after its length (4 bytes, big-endian), on a Unix
socket pair that the node creates and the source process inherits.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec

HEADER = 4
MAX_FRAME = 256 * 1024 * 1024  # a batch of 10,000 large messages still fits


class Start(msgspec.Struct, tag="start", array_like=True):
    trigger_id: str
    kind: str
    topic: str
    options: dict[str, Any]
    config: dict[str, Any]
    data_dir: str


class Stop(msgspec.Struct, tag="stop", array_like=True):
    trigger_id: str


class Committed(msgspec.Struct, tag="committed", array_like=True):
    request: int
    error: str = ""  # empty: the events are durable


class Publish(msgspec.Struct, tag="publish", array_like=True):
    request: int
    topic: str
    events: list[bytes]  # each ``encode_event``'s form


class Stats(msgspec.Struct, tag="stats", array_like=True):
    sources: list[dict[str, Any]]  # ``BrokerSource.stats()`` of each running source


class Stopped(msgspec.Struct, tag="stopped", array_like=True):
    trigger_id: str


ToHost = Start | Stop | Committed
ToNode = Publish | Stats | Stopped

_encoder = msgspec.msgpack.Encoder()


class LinkError(Exception):
    """The other end sent something that is not a frame of this protocol."""


class Link:
    """One end of the socket pair: ``receive`` gives the next message (None once the
    other end has closed), ``send`` queues one on the transport."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        kind: type[ToHost] | type[ToNode] | Any,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._decoder: msgspec.msgpack.Decoder[Any] = msgspec.msgpack.Decoder(kind)
        self.closed = False

    @classmethod
    async def open(cls, sock: Any, kind: Any) -> Link:
        reader, writer = await asyncio.open_unix_connection(sock=sock, limit=2**20)
        return cls(reader, writer, kind)

    async def receive(self) -> Any:
        try:
            header = await self._reader.readexactly(HEADER)
            size = int.from_bytes(header, "big")
            if size > MAX_FRAME:
                raise LinkError(f"a frame of {size} bytes is over the limit of {MAX_FRAME}")
            body = await self._reader.readexactly(size)
        except (asyncio.IncompleteReadError, ConnectionError):
            self.closed = True
            return None
        try:
            return self._decoder.decode(body)
        except msgspec.DecodeError as exc:
            raise LinkError(f"an unreadable frame: {exc}") from exc

    def send(self, message: msgspec.Struct) -> None:
        if self.closed or self._writer.is_closing():
            self.closed = True
            return
        body = _encoder.encode(message)
        self._writer.write(len(body).to_bytes(HEADER, "big") + body)

    async def drain(self) -> None:
        if not self.closed:
            try:
                await self._writer.drain()
            except ConnectionError:
                self.closed = True

    def close(self) -> None:
        self.closed = True
        self._writer.close()
