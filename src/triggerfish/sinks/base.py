"""What every sink shares: a lazy connection, counters, and errors mapped to ours.

A ``Sink`` sends events to addresses of its broker. ``publish_batch`` sends a batch
with as few round trips as the broker allows (each kind's ``_send_batch``: a Redis
pipeline, JetStream publishes awaited together, AMQP confirms and MQTT QoS 1/2
acknowledgements in flight together; one event after the other by default) and gives,
for each event, whether the broker confirmed it (or, for brokers without
confirmations, whether the send completed). It connects on first use; when a send
fails it drops the connection, so the next batch connects again, and that event's
outcome is an ``AdapterError`` with the driver's error as the cause. The relay
(``sinks/relay.py``) decides when to try again. ``SinkRejectedError`` marks an event
the broker can never take (a body that is not text for PostgreSQL NOTIFY, say): trying
again would fail the same way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, TypeAlias

from triggerfish.errors import AdapterError
from triggerfish.events.model import Event
from triggerfish.functions.brokers import BrokerConfig
from triggerfish.sinks.message import Outgoing, outgoing
from triggerfish.sources.brokers.urls import redact_url

log = logging.getLogger("triggerfish.sinks")


class SinkRejectedError(AdapterError):
    """The broker cannot take this event as it is; sending it again would not help."""


#: One event to send: its address at the broker, the event, and the message made of it.
Item: TypeAlias = tuple[str, Event, Outgoing]
#: What became of one event: None once the broker has it, else the error.
Outcome: TypeAlias = Exception | None


@dataclass(slots=True)
class SinkStats:
    kind: str
    broker: str
    url: str  # redacted
    connected: bool = False
    published: int = 0  # messages the broker confirmed
    failures: int = 0  # events whose send failed, at each try (the relay retries them)
    reconnects: int = 0  # connections made after a previous one was lost
    rejected: int = 0  # events the broker can never take (moved to _sink.<name>.dlq)
    pending: int = 0  # events waiting on _sink.<name>, as of ``Sinks.count_pending``
    last_error: str = ""
    last_published_at: float = 0.0


class Sink:
    kind: ClassVar[str]

    def __init__(self, name: str, config: BrokerConfig, *, url: str) -> None:
        self.name = name
        self.config = config
        self.url = url  # with ${VAR} expanded: never log it
        self.stats = SinkStats(self.kind, name, redact_url(config.url))
        self._open = False
        self._ever_connected = False

    # -- what each kind provides ------------------------------------------------------

    async def _connect(self) -> None:
        raise NotImplementedError

    async def _send(self, address: str, event: Event, message: Outgoing) -> None:
        raise NotImplementedError

    async def _send_batch(self, items: Sequence[Item]) -> list[Outcome]:
        """Send ``items``; an outcome per item, in order. Raise when the whole batch
        failed (the connection broke). Stopping early is allowed: items without an
        outcome were not sent. This default sends one after the other and stops at the
        first failure other than a rejection."""
        outcomes: list[Outcome] = []
        for address, event, message in items:
            try:
                await self._send(address, event, message)
            except SinkRejectedError as exc:
                outcomes.append(exc)
                continue
            except Exception as exc:
                outcomes.append(exc)
                break
            outcomes.append(None)
        return outcomes

    async def _disconnect(self) -> None:
        raise NotImplementedError

    # -- shared -----------------------------------------------------------------------

    async def publish(self, address: str, event: Event) -> None:
        """Send ``event`` to ``address``; returns once the broker has it, raises
        ``SinkRejectedError`` or ``AdapterError`` otherwise."""
        (outcome,) = await self.publish_batch([(address, event)])
        if outcome is not None:
            raise outcome

    async def publish_batch(self, batch: Sequence[tuple[str, Event]]) -> list[Outcome]:
        """Send each ``(address, event)``; for each, in order: None once the broker has
        it, a ``SinkRejectedError`` when it never will, or an ``AdapterError`` when
        sending failed or did not happen (send it again later)."""
        if not batch:
            return []
        structured = self.config.format == "cloudevent"
        items = [
            (address, event, outgoing(event, structured=structured)) for address, event in batch
        ]
        try:
            await self._open_once()
            outcomes = await self._send_batch(items)
        except Exception as exc:
            outcomes = [exc] * len(items)
        results: list[Outcome] = []
        broken = False
        for index, (address, _event, _message) in enumerate(items):
            if index >= len(outcomes):
                skipped = f"{self.kind} broker {self.name}: not sent, an event before it failed"
                results.append(AdapterError(skipped))
                continue
            outcome = outcomes[index]
            if outcome is None:
                self.stats.published += 1
            elif isinstance(outcome, SinkRejectedError):
                self.stats.rejected += 1
                self.stats.last_error = str(outcome)
            else:
                broken = True
                outcome = self._failed(address, outcome)
            results.append(outcome)
        if broken:
            await self.aclose()
        if None in results:
            self.stats.last_published_at = time.time()
        return results

    async def _open_once(self) -> None:
        if self._open:
            return
        try:
            await self._connect()
        except BaseException:
            # Close what the attempt opened before it failed (a connection without its
            # channel, say).
            try:
                await self._disconnect()
            except Exception:
                log.debug("%s broker %s: closing failed", self.kind, self.name, exc_info=True)
            raise
        self._open = True
        self.stats.connected = True
        if self._ever_connected:
            self.stats.reconnects += 1
        self._ever_connected = True
        log.info("%s broker %s connected to %s", self.kind, self.name, self.stats.url)

    def _failed(self, address: str, exc: Exception) -> AdapterError:
        self.stats.failures += 1
        self.stats.last_error = f"{type(exc).__name__}: {exc}"
        error = AdapterError(
            f"{self.kind} broker {self.name} ({self.stats.url}): sending to {address!r} "
            f"failed: {self.stats.last_error}"
        )
        error.__cause__ = exc
        return error

    async def aclose(self) -> None:
        if self._open:
            self._open = False
            self.stats.connected = False
            try:
                await self._disconnect()
            except Exception:
                log.debug("%s broker %s: closing failed", self.kind, self.name, exc_info=True)
