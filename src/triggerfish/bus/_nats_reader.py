"""Reading a topic's stream in offset order, without touching any consumer group.

A read goes through a short-lived consumer without acknowledgements, starting at an
offset; it is deleted when the read ends (JetStream removes one left behind by a reader
that vanished after ``READER_IDLE`` seconds). A time becomes an offset the same way: a
consumer starting at the time knows the first sequence stamped at or after it.
JetStream's message timestamps are kept to the nanosecond, and a start time to the
microsecond; ``first_since`` steps over the few events of that last microsecond that
were stamped before ``since``, so a time taken from an event's ``published_at`` selects
exactly that event and those after it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from triggerfish.bus._nats_admin import start_time
from triggerfish.bus._nats_wire import Delivered, Wire, delivered

if TYPE_CHECKING:
    from nats.js import JetStreamManager
    from nats.js.api import ConsumerInfo

#: Seconds an abandoned reading consumer lives on in JetStream.
READER_IDLE = 30.0
_STEP = 8


@contextlib.asynccontextmanager
async def _reader(
    jsm: JetStreamManager, stream: str, *, first: int = 1, since: float | None = None
) -> AsyncIterator[ConsumerInfo]:
    from nats.js import api

    config = api.ConsumerConfig(
        description="triggerfish read",
        ack_policy=api.AckPolicy.NONE,
        deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
        opt_start_seq=first,
        inactive_threshold=READER_IDLE,
        mem_storage=True,
    )
    if since is not None:
        config.deliver_policy = api.DeliverPolicy.BY_START_TIME
        config.opt_start_seq, config.opt_start_time = None, start_time(since)
    info = await jsm.add_consumer(stream, config)
    try:
        yield info
    finally:
        with contextlib.suppress(Exception):
            await jsm.delete_consumer(stream, info.name)


async def first_since(jsm: JetStreamManager, wire: Wire, stream: str, since: float) -> int:
    """The offset of the first event stamped at or after ``since``; the next offset to
    come when there is none yet."""
    async with _reader(jsm, stream, since=since) as reader:
        offset = reader.delivered.stream_seq + 1 if reader.delivered else 1
        while True:
            page = await wire.pull(stream, reader.name, batch=_STEP, wait=None)
            for msg in page:
                meta = delivered(msg.reply)
                if meta.published_at >= since:
                    return meta.offset
                offset = meta.offset + 1
            if len(page) < _STEP:
                return offset


async def read_stream(
    jsm: JetStreamManager, wire: Wire, stream: str, *, first: int, limit: int
) -> list[tuple[Delivered, bytes]]:
    """Up to ``limit`` stored messages from offset ``first`` on, in offset order."""
    out: list[tuple[Delivered, bytes]] = []
    async with _reader(jsm, stream, first=max(first, 1)) as reader:
        pending = reader.num_pending or 0
        while pending and len(out) < limit:
            wanted = min(limit - len(out), pending)
            page = await wire.pull(stream, reader.name, batch=wanted, wait=None)
            out.extend((delivered(msg.reply), msg.data) for msg in page)
            pending -= len(page)
            if len(page) < wanted:
                break
    return out
