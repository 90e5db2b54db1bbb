"""The sink relay: moves events from ``_sink.<broker>`` to the broker, at least once.

Emits and destinations aimed at a broker are not sent from the invocation: they are
published to the internal topic ``_sink.<broker>`` in the same durable commit as any
emitted event, before the triggering event is acknowledged. One ``SinkRelay`` per
named broker consumes that topic with its consumer group (``_relay``) like a trigger:
it leases a batch, sends it with as few round trips as the broker allows (all of the
batch in flight, then every confirmation awaited) and acknowledges each event once the
broker confirmed it. When sends fail (the broker is down, or refuses the message for
now) the relay puts the events not confirmed back with a delay, waits, and tries again with
exponential backoff (``backoff`` doubling up to ``max_backoff``, with jitter), for as
long as it takes: nothing is dropped while the broker is away, and a kill -9 leaves
unacknowledged events leased, delivered again once the lease runs out. An event the
broker can never take (``SinkRejectedError``) goes to ``_sink.<broker>.dlq`` with the
error as extensions, so it does not block the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence

from triggerfish.bus.base import Bus, Delivery
from triggerfish.sinks.base import Sink, SinkRejectedError
from triggerfish.sinks.message import SINK_ADDRESS, sink_topic
from triggerfish.sources.brokers.base import backoff_delay
from triggerfish.tasks import cancel_task

log = logging.getLogger("triggerfish.sinks")

RELAY_GROUP = "_relay"
BATCH = 64
LEASE = 30.0  # seconds; extended while a batch is being sent
FETCH_WAIT = 10.0


class SinkRelay:
    def __init__(self, bus: Bus, sink: Sink, *, retention: float | None = None) -> None:
        self._bus = bus
        self.sink = sink
        self.topic = sink_topic(sink.name)
        self.dead_letter_topic = f"{self.topic}.dlq"
        self._retention = retention
        self._task: asyncio.Task[None] | None = None
        self._failures = 0

    async def start(self) -> None:
        existing = {topic.name for topic in await self._bus.topics()}
        for topic in (self.topic, self.dead_letter_topic):
            if topic not in existing:
                await self._bus.create_topic(topic, retention=self._retention)
        await self._bus.subscribe(self.topic, RELAY_GROUP, start="earliest")
        self._task = asyncio.create_task(self._run(), name=f"sink relay {self.sink.name}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_task(task)
        await self.sink.aclose()

    async def _run(self) -> None:
        while True:
            try:
                deliveries = await self._bus.fetch(
                    self.topic, RELAY_GROUP, max_count=BATCH, lease=LEASE, wait=FETCH_WAIT
                )
                await self._relay(deliveries)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sink relay %s: the bus failed; trying again", self.sink.name)
                await asyncio.sleep(1.0)

    async def _relay(self, deliveries: Sequence[Delivery]) -> None:
        if not deliveries:
            return
        batch = [(str(d.event.extensions.get(SINK_ADDRESS, "")), d.event) for d in deliveries]
        offsets = [d.offset for d in deliveries]
        async with self._leased(offsets):
            outcomes = await self.sink.publish_batch(batch)
        done: list[int] = []
        later: list[Delivery] = []
        error: Exception | None = None
        try:
            for delivery, outcome in zip(deliveries, outcomes, strict=True):
                if outcome is None:
                    done.append(delivery.offset)
                elif isinstance(outcome, SinkRejectedError):
                    await self._reject(delivery, outcome)
                    done.append(delivery.offset)
                else:
                    later.append(delivery)
                    error = error or outcome
        finally:
            if done:
                await self._bus.ack(self.topic, RELAY_GROUP, done)
        if error is not None:
            await self._retry_later(later, error)
        else:
            self._failures = 0

    @contextlib.asynccontextmanager
    async def _leased(self, offsets: list[int]) -> AsyncIterator[None]:
        """Keep ``offsets`` leased to the relay while a batch is being sent."""

        async def renew() -> None:
            while True:
                await asyncio.sleep(LEASE / 2)
                await self._bus.extend(self.topic, RELAY_GROUP, offsets, LEASE)

        task = asyncio.create_task(renew())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _retry_later(self, rest: Sequence[Delivery], exc: Exception) -> None:
        config = self.sink.config
        delay = backoff_delay(config.backoff, config.max_backoff, self._failures)
        self._failures += 1
        for delivery in rest:
            await self._bus.nack(self.topic, RELAY_GROUP, delivery.offset, delay=delay)
        log.warning(
            "sink relay %s: %s; %d event(s) wait, next try in %.1f s (attempt %d)",
            self.sink.name, exc, len(rest), delay, self._failures,
        )  # fmt: skip
        await asyncio.sleep(delay)

    async def _reject(self, delivery: Delivery, exc: SinkRejectedError) -> None:
        letter = delivery.event.with_extensions(
            errortype=type(exc).__name__,
            errormessage=str(exc)[:4096],
            errortime=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        )
        await self._bus.publish(self.dead_letter_topic, [letter], dedupe=False)
        log.error("sink relay %s: %s; moved to %s", self.sink.name, exc, self.dead_letter_topic)

    async def count_pending(self) -> None:
        """Read how many events wait on ``_sink.<broker>`` into the sink's counters."""
        for group in await self._bus.groups(self.topic):
            if group.group == RELAY_GROUP and group.topic == self.topic:
                self.sink.stats.pending = group.backlog + group.in_flight + group.waiting_retry
