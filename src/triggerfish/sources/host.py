"""The source process: runs a node's broker sources beside the node, not in it.

A broker client spends most of its time decoding the broker's frames and turning
messages into events. In a process of its own that work runs on another core beside
the node's dispatch, instead of taking turns with it on the node's event loop. The
node starts this process when its first broker trigger starts (``SourceProcess``) and
talks to it over a socket pair (``triggerfish.sources.link``).

The promise is the one of every source: a message is acknowledged to its broker only
after its event is durable. Here the node commits the events of each batch to the bus
and answers ``Committed``; only then does the source acknowledge the batch. When the
node goes away (its end of the socket closes, as on kill -9) this process cancels its
sources without acknowledging anything more and exits, and the brokers deliver again
what was not acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from triggerfish.errors import AdapterError
from triggerfish.events.model import Event, encode_event
from triggerfish.observe.logs import configure_logging
from triggerfish.sources.brokers import BrokerKind, BrokerSource, broker_kinds
from triggerfish.sources.brokers.base import BrokerContext
from triggerfish.sources.link import Committed, Link, Publish, Start, Stats, Stop, Stopped, ToHost
from triggerfish.tasks import cancel_task

log = logging.getLogger("triggerfish.sources")

STATS_INTERVAL = 0.1  # seconds between two reports of changed counters


class LinkedBus:
    """The ``EventSink`` of the hosted sources: each ``publish`` is committed by the
    node, and returns once the node says the events are durable."""

    def __init__(self, link: Link) -> None:
        self._link = link
        self._waiting: dict[int, asyncio.Future[str]] = {}
        self._requests = 0

    async def publish(self, topic: str, events: Sequence[Event]) -> None:
        self._requests += 1
        request = self._requests
        answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiting[request] = answer
        try:
            self._link.send(Publish(request, topic, [encode_event(event) for event in events]))
            await self._link.drain()
            if self._link.closed:
                raise AdapterError("the node has gone; nothing was committed")
            error = await answer
        finally:
            self._waiting.pop(request, None)
        if error:
            raise AdapterError(f"the node could not commit the events: {error}")

    def committed(self, message: Committed) -> None:
        answer = self._waiting.get(message.request)
        if answer is not None and not answer.done():
            answer.set_result(message.error)


class SourceHost:
    def __init__(self, link: Link, kinds: Sequence[Any] | None = None) -> None:
        self._link = link
        self._bus = LinkedBus(link)
        self._kinds: dict[str, BrokerKind[Any]] = {
            kind.name: kind for kind in (kinds if kinds is not None else broker_kinds())
        }
        self._sources: dict[str, BrokerSource[Any]] = {}

    async def serve(self) -> None:
        """Run sources as the node says until it closes the link."""
        reporter = asyncio.create_task(self._report(), name="source counters")
        try:
            while (message := await self._link.receive()) is not None:
                if isinstance(message, Committed):
                    self._bus.committed(message)
                elif isinstance(message, Start):
                    await self._start(message)
                elif isinstance(message, Stop):
                    await self._stop(message.trigger_id)
                    self._link.send(Stopped(message.trigger_id))
        finally:
            await cancel_task(reporter)
            for trigger_id in list(self._sources):
                await self._stop(trigger_id)

    async def _start(self, message: Start) -> None:
        await self._stop(message.trigger_id)  # a restart of the same trigger
        kind = self._kinds.get(message.kind)
        if kind is None:
            log.error("trigger %s: no %r source in this process", message.trigger_id, message.kind)
            return
        context = BrokerContext(
            message.trigger_id,
            message.topic,
            message.options,
            message.config,
            self._bus,
            Path(message.data_dir),
        )
        try:
            source = kind.create_for(context)
            await source.start()
        except Exception:
            log.exception("source of trigger %s (%s) did not start", message.trigger_id, kind.name)
            return
        self._sources[message.trigger_id] = source

    async def _stop(self, trigger_id: str) -> None:
        source = self._sources.pop(trigger_id, None)
        if source is None:
            return
        try:
            await source.stop()
        except Exception:
            log.exception("source of trigger %s did not stop cleanly", trigger_id)

    async def _report(self) -> None:
        reported: list[dict[str, Any]] = []
        while True:
            current = [source.stats() for source in self._sources.values()]
            if current != reported:
                self._link.send(Stats(current))
                reported = current
            await asyncio.sleep(STATS_INTERVAL)


async def serve(fd: int) -> None:
    sock = socket.socket(fileno=fd)
    link = await Link.open(sock, ToHost)
    try:
        await SourceHost(link).serve()
    finally:
        link.close()


def main(argv: Sequence[str] | None = None) -> None:
    """``main([FD, LOG_LEVEL])``: serve the link on descriptor FD."""
    args = list(sys.argv[1:] if argv is None else argv)
    fd, level = int(args[0]), args[1] if len(args) > 1 else "INFO"
    # The node passes its log format in TRIGGERFISH_LOG_FORMAT.
    configure_logging(level, os.environ.get("TRIGGERFISH_LOG_FORMAT", "text"))
    loop_factory = None
    with contextlib.suppress(ImportError):
        import uvloop

        loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(serve(fd))


if __name__ == "__main__":
    main()
