"""The trigger engine: one ``TriggerRunner`` per trigger, kept in step with the store.

Besides the triggers people declare, every function has an asynchronous-invoke
subscription (topic ``_invoke.<function>``, the payload delivered as sent, with the
function's ``async_retry`` policy), so ``invoke --async`` shares the bus's promise.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

import msgspec

from triggerfish.bus.base import Bus
from triggerfish.dispatch.emitter import Emitter
from triggerfish.dispatch.flow import FlowSettings
from triggerfish.dispatch.ordering import ExclusiveRunner
from triggerfish.dispatch.policy import RetryPolicy, Subscription
from triggerfish.dispatch.redrives import REDRIVE_GROUP, Redrives
from triggerfish.dispatch.runner import LEASE_MARGIN, Resolver, TriggerRunner
from triggerfish.dispatch.shapes import PayloadMode
from triggerfish.errors import NotFoundError, PatternError
from triggerfish.events.model import Event
from triggerfish.functions.triggers import BucketOptions
from triggerfish.observe.recorder import Recorder
from triggerfish.observe.tracing import Tracer
from triggerfish.runtime.base import DEFAULT_REGION, Executor
from triggerfish.store.cluster import Cluster
from triggerfish.store.records import TriggerRecord
from triggerfish.store.sql import SqlStore

log = logging.getLogger("triggerfish.dispatch")

ASYNC_RETRY_DEFAULTS = {"max_attempts": 3, "max_age": 21600.0}


def invoke_topic(function: str) -> str:
    return f"_invoke.{function}"


def async_subscription(function: str, config: dict[str, Any]) -> Subscription:
    return Subscription(
        id=f"{function}._async",
        function=function,
        topic=invoke_topic(function),
        retry=RetryPolicy.from_config(config.get("async_retry"), **ASYNC_RETRY_DEFAULTS),
        dead_letter=config.get("dead_letter") or "",
        payload="data",
        start="earliest",
    )


PAYLOAD_OF_FORMAT: dict[str, PayloadMode] = {
    "cloudevent": "cloudevent",
    "aws": "data",
    "eventbridge": "eventbridge",
    "sqs": "sqs",
}


def trigger_subscription(trigger: TriggerRecord) -> Subscription | None:
    """The subscription that runs a stored trigger; None for HTTP routes, which are
    answered without the bus."""
    config = trigger.config
    if config.get("http"):
        return None
    filters: list[dict[str, Any]] = []
    # Bucket triggers hand Lambda code S3's {"Records": [...]} unless told otherwise.
    event_format = config.get("event_format") or ("aws" if config.get("bucket") else "cloudevent")
    # An EventBridge trigger's pattern sees what its handler gets, as an EventBridge rule.
    envelope = event_format == "eventbridge"
    if config.get("pattern") and not envelope:
        filters.append(config["pattern"])
    if config.get("bucket"):
        filters.extend(BucketOptions.model_validate(config["bucket"]).filters())
    batch = config.get("batch") or {}
    return Subscription(
        id=trigger.id,
        function=trigger.function,
        topic=trigger.topic,
        qualifier=trigger.qualifier,
        filters=tuple(filters),
        envelope_filters=(config["pattern"],) if envelope and config.get("pattern") else (),
        retry=RetryPolicy.from_config(config.get("retry")),
        dead_letter=config.get("dead_letter") or "",
        batch_size=int(batch.get("size") or config.get("batch_size") or 1),
        batch_window=float(batch.get("window") or 0),
        batch_max_bytes=int(batch.get("max_bytes") or 0),
        ordering_key=str((config.get("ordering") or {}).get("key") or ""),
        payload=PAYLOAD_OF_FORMAT[event_format],
        start=config.get("start") or "latest",
        flow=FlowSettings.from_config(config),
    )


class Dispatcher:
    def __init__(
        self,
        bus: Bus,
        executor: Executor,
        *,
        store: SqlStore,
        resolve: Resolver,
        recorder: Recorder,
        emitter: Emitter,
        default_retention: float | None = None,
        lease_margin: float = LEASE_MARGIN,
        tracer: Tracer | None = None,
        region: str = DEFAULT_REGION,
        leases: Cluster | None = None,
        holder: str = "",
        trigger_lease: float = 5.0,
        nodes: Callable[[], int] | None = None,
    ) -> None:
        """``leases``: on a cluster, where ordered triggers take the lease that lets one
        node at a time run each (``ordering``), as ``holder`` for ``trigger_lease`` s.
        ``nodes``: how many nodes run the triggers, who share their flow limits."""
        self._nodes = nodes
        self._leases = leases
        self._holder = holder
        self._trigger_lease = trigger_lease
        self._bus = bus
        self._tracer = tracer
        self._region = region
        self._default_retention = default_retention
        self._lease_margin = lease_margin
        self._executor = executor
        self._store = store
        self._resolve = resolve
        self._recorder = recorder
        self._emitter = emitter
        self._runners: dict[str, TriggerRunner | ExclusiveRunner] = {}
        self._lock = asyncio.Lock()
        self._grace = 10.0
        self.redrives = Redrives(bus, store.documents)
        self._redriving = asyncio.Lock()  # one redrive at a time, so none sends twice

    @property
    def subscriptions(self) -> list[Subscription]:
        return [runner.subscription for runner in self._runners.values()]

    def subscription(self, trigger_id: str) -> Subscription | None:
        runner = self._runners.get(trigger_id)
        return runner.subscription if runner else None

    async def desired(self) -> list[Subscription]:
        """The subscriptions the store asks for now."""
        wanted: list[Subscription] = []
        for function in await self._store.list_functions():
            version = await self._store.resolve(function.name, "live")
            wanted.append(async_subscription(function.name, version.config))
        for trigger in await self._store.list_triggers():
            subscription = trigger_subscription(trigger)
            if subscription is not None:
                wanted.append(subscription)
        return wanted

    async def ensure_topics(self, subscriptions: Iterable[Subscription]) -> None:
        """Create the topics a set of subscriptions reads and dead-letters to, with the
        default retention; topics that exist keep their own."""
        existing = {topic.name for topic in await self._bus.topics()}
        for sub in subscriptions:
            debounced = (sub.debounced_topic,) if sub.flow and sub.flow.debounce else ()
            for topic in (sub.topic, sub.dead_letter_topic, sub.redrive_topic, *debounced):
                if topic not in existing:
                    await self._bus.create_topic(topic, retention=self._default_retention)
                    existing.add(topic)
            await self._bus.subscribe(sub.dead_letter_topic, REDRIVE_GROUP, start="earliest")

    async def start(self) -> None:
        await self.refresh()

    async def refresh(self) -> None:
        """Start new triggers, stop removed ones, restart changed ones."""
        async with self._lock:
            wanted = {sub.id: sub for sub in await self.desired()}
            await self.ensure_topics(wanted.values())
            for trigger_id in list(self._runners):
                runner = self._runners[trigger_id]
                if wanted.get(trigger_id) != runner.subscription:
                    del self._runners[trigger_id]
                    await runner.stop(grace=self._grace)
                    if trigger_id not in wanted:
                        await self._bus.unsubscribe(runner.subscription.topic, trigger_id)
                        log.info("trigger %s removed", trigger_id)
            for trigger_id, sub in wanted.items():
                if trigger_id not in self._runners:
                    try:
                        runner = self._runner(sub)
                    except PatternError as exc:
                        # A pattern stored by a release whose rules were looser: the
                        # other triggers start; this one's events wait in its topic.
                        log.error(
                            "trigger %s cannot start: %s; deploy %s again with a pattern "
                            "this release accepts (its events wait in %s)",
                            trigger_id, exc, sub.function, sub.topic,
                        )  # fmt: skip
                        continue
                    await runner.start()
                    self._runners[trigger_id] = runner
                    log.info("trigger %s: %s -> %s", trigger_id, sub.topic, sub.function)

    def _runner(self, sub: Subscription) -> TriggerRunner | ExclusiveRunner:
        def make() -> TriggerRunner:
            return TriggerRunner(
                sub,
                self._bus,
                self._executor,
                resolve=self._resolve,
                recorder=self._recorder,
                emitter=self._emitter,
                lease_margin=self._lease_margin,
                tracer=self._tracer,
                region=self._region,
                # An ordered trigger runs on one node at a time: its limits are its own.
                nodes=None if sub.ordering_key else self._nodes,
            )

        if sub.ordering_key and self._leases is not None:
            return ExclusiveRunner(sub, make, self._leases, holder=self._holder,
                                   ttl=self._trigger_lease, grace=self._grace)  # fmt: skip
        return make()

    async def stop(self, *, grace: float = 10.0) -> None:
        async with self._lock:
            runners, self._runners = list(self._runners.values()), {}
            await asyncio.gather(*(runner.stop(grace=grace) for runner in runners))

    async def redrive(self, dead_letter_topic: str, *, limit: int = 1000) -> tuple[int, int]:
        """Feed dead-lettered events back into the triggers they failed in.

        Returns (redriven, skipped); skipped events name a trigger that no longer exists
        and stay in the dead-letter topic. Events already redriven alone are acknowledged
        without being sent again.
        """
        async with self._redriving:
            return await self._redrive_all(dead_letter_topic, limit)

    async def _redrive_all(self, dead_letter_topic: str, limit: int) -> tuple[int, int]:
        marked = await self.redrives.marked(dead_letter_topic)
        redriven = skipped = 0
        while redriven + skipped < limit:
            batch = await self._bus.fetch(
                dead_letter_topic,
                REDRIVE_GROUP,
                max_count=min(100, limit - redriven - skipped),
                lease=60.0,
            )
            if not batch:
                break
            for delivery in batch:
                if marked.get(delivery.offset) == delivery.event.id:
                    await self._bus.ack(dead_letter_topic, REDRIVE_GROUP, [delivery.offset])
                    continue
                sub = self._redrive_target(delivery.event)
                if sub is None:
                    skipped += 1
                    await self._bus.nack(
                        dead_letter_topic, REDRIVE_GROUP, delivery.offset, delay=3600.0
                    )
                    continue
                await self._bus.publish(sub.redrive_topic, [_cleared(delivery.event)], dedupe=False)
                await self._bus.ack(dead_letter_topic, REDRIVE_GROUP, [delivery.offset])
                redriven += 1
        # Records the cursor has passed (acknowledged above, or by a run that stopped
        # before it forgot them) are done with.
        cursor, _ = await self.redrives.cursor(dead_letter_topic)
        await self.redrives.forget(dead_letter_topic, [o for o in marked if o <= cursor])
        return redriven, skipped

    async def redrive_event(self, dead_letter_topic: str, event_id: str) -> tuple[int, int]:
        """Feed one dead-lettered event (the first of that id still waiting) back into
        the trigger it failed in: (1, 0), or (0, 1) when that trigger no longer exists
        and the event stays. NotFoundError when no event of that id waits."""
        async with self._redriving:
            stored = await self.redrives.find(dead_letter_topic, event_id)
            if stored is None:
                raise NotFoundError(
                    f"no event {event_id!r} waits in {dead_letter_topic!r}; "
                    f"`triggerfish dlq list {dead_letter_topic}` lists those that do"
                )
            sub = self._redrive_target(stored.event)
            if sub is None:
                return 0, 1
            # Sent before it is recorded: a crash in between sends it again later (at
            # least once), never not at all.
            await self._bus.publish(sub.redrive_topic, [_cleared(stored.event)], dedupe=False)
            await self.redrives.mark(stored)
            return 1, 0

    def _redrive_target(self, event: Event) -> Subscription | None:
        return self.subscription(str(event.extensions.get("errortrigger", "")))


def _cleared(event: Event) -> Event:
    """The dead-lettered event without the error extensions its dead-lettering added."""
    extensions = {k: v for k, v in event.extensions.items() if not k.startswith("error")}
    return msgspec.structs.replace(event, extensions=extensions)
