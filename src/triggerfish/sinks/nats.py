"""NATS sinks: core NATS (publish, then a flush so the server has it) and JetStream
(publish and wait for the stream's acknowledgement). A batch is published at once,
then its acknowledgements awaited together (core NATS: one flush).

Raw format sends CloudEvents attributes as ``ce-<name>`` headers and the content type
as ``content-type``. JetStream messages carry ``Nats-Msg-Id`` = the event's id, so the
stream drops a second copy sent within its duplicate window (two minutes by default):
an event sent again after a crash is stored once. A JetStream publish to a subject no
stream captures fails (no responders) and is retried until a stream takes it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from triggerfish.nats_client import connect
from triggerfish.sinks.base import Item, Outcome, Sink
from triggerfish.sinks.message import Outgoing
from triggerfish.sources.brokers.base import require


def _headers(message: Outgoing) -> dict[str, str]:
    headers = {f"ce-{name}": value for name, value in message.attributes.items()}
    if message.content_type:
        headers["content-type"] = message.content_type
    return headers


class NatsSink(Sink):
    kind = "nats"
    _nc: Any = None

    async def _connect(self) -> None:
        require("nats")
        self._nc = await connect(
            self.url, allow_reconnect=False, connect_timeout=5, error_cb=self._error
        )

    async def _error(self, exc: Exception) -> None:
        self.stats.last_error = f"{type(exc).__name__}: {exc}"

    async def _disconnect(self) -> None:
        nc, self._nc = self._nc, None
        if nc is not None and not nc.is_closed:
            await nc.close()

    async def _send_batch(self, items: Sequence[Item]) -> list[Outcome]:
        for address, _event, message in items:
            await self._nc.publish(address, message.body, headers=_headers(message) or None)
        await self._nc.flush(timeout=10)  # one round trip: the server has them all
        return [None] * len(items)


class JetStreamSink(NatsSink):
    kind = "jetstream"
    _js: Any = None

    async def _connect(self) -> None:
        await super()._connect()
        self._js = self._nc.jetstream(timeout=self.config.timeout)

    async def _disconnect(self) -> None:
        self._js = None
        await super()._disconnect()

    async def _send_batch(self, items: Sequence[Item]) -> list[Outcome]:
        # Every publish goes out before the first acknowledgement is awaited.
        pending: list[asyncio.Future[Any]] = []
        for address, event, message in items:
            headers = _headers(message)
            headers["Nats-Msg-Id"] = event.id
            pending.append(await self._js.publish_async(address, message.body, headers=headers))
        try:
            async with asyncio.timeout(self.config.timeout):
                acks = await asyncio.gather(*pending, return_exceptions=True)
        except TimeoutError:
            for future in pending:
                future.cancel()
            raise TimeoutError(
                f"JetStream did not acknowledge within {self.config.timeout} s"
            ) from None
        return [_outcome(ack) for ack in acks]


def _outcome(ack: Any) -> Outcome:
    if isinstance(ack, Exception):
        return ack
    if isinstance(ack, BaseException):  # cancelled
        return RuntimeError(f"the publish was cancelled: {ack!r}")
    return None
