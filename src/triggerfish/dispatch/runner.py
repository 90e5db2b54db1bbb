"""One trigger at work: lease events from its topic, filter, invoke, then ack, retry
or dead-letter.

The promise kept here: an event is acknowledged only after its invocation succeeded
and the events the handler emitted are durable, or after it was published to the
dead-letter topic. Anything else (a crash, a shutdown, a failure) leaves it leased or
released, so the bus delivers it again.

Leased events wait in a ``Lane`` per topic (``batching``), which says when a batch is
full or its window is over and, on an ordered trigger, keeps each key's events one
batch at a time in publish order. Every batch starts in one place, ``_run``. On an
ordered trigger a failed batch is retried here, its leases kept, rather than handed
back to the bus: so nothing of its key can overtake it. An ordered runner also starts
no invocation before the leases that others (a node that died, the runner it
replaces) hold on its group are gone: their events come back first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

from triggerfish.bus.base import Bus, Delivery
from triggerfish.clock import SYSTEM_CLOCK, Clock
from triggerfish.dispatch import chains, shapes
from triggerfish.dispatch.batching import Batch, Lane, event_size, key_reader
from triggerfish.dispatch.emitter import Emitter
from triggerfish.dispatch.flow import FlowGate, GateClosedError, Permit, record_superseded
from triggerfish.dispatch.policy import Subscription, not_retried
from triggerfish.errors import AdapterError, NotFoundError, TriggerfishError
from triggerfish.events.model import Event
from triggerfish.ids import new_id
from triggerfish.observe.recorder import Recorder
from triggerfish.observe.tracing import DispatchTrace, Tracer
from triggerfish.patterns import compile as compile_pattern
from triggerfish.patterns import event_view
from triggerfish.runtime.base import (
    DEFAULT_REGION,
    Executor,
    FunctionSpec,
    InvocationRequest,
    InvocationResult,
)
from triggerfish.store.records import ChainEvent

log = logging.getLogger("triggerfish.dispatch")

Resolver = Callable[[str, str], Awaitable[FunctionSpec]]

#: Extensions that a dead-lettered event carries (CloudEvents names: lowercase, no dash).
DEAD_LETTER_EXTENSIONS = (
    "errortype",
    "errormessage",
    "errorstatus",
    "errorattempts",
    "errortrigger",
    "errorfunction",
    "errorreason",
    "errortime",
)
LEASE_MARGIN = 30.0  # seconds of lease beyond the function's timeout
# Seconds a lease call waits. The bus wakes it when an event is published, released or
# due for a retry, so an idle trigger costs one wake-up in this long.
FETCH_WAIT = 300.0
PREFETCH = 8  # invocations leased per environment the function may run at once
MAX_FETCH = 256
ACK_DELAY = 0.01  # seconds acknowledgements wait to share one bus call
MAX_BACKOFF = 4.0  # seconds between tries of a delivery loop that keeps failing
# An ordered trigger leases this many times further ahead, so that keys waiting for a
# retry do not keep the other keys from being leased.
ORDERED_SPREAD = 4
CLEAR_POLL = 0.5  # seconds between looks at the leases others hold (ordered triggers)


class TriggerRunner:
    def __init__(
        self,
        subscription: Subscription,
        bus: Bus,
        executor: Executor,
        *,
        resolve: Resolver,
        recorder: Recorder,
        emitter: Emitter,
        rand: random.Random | None = None,
        lease_margin: float = LEASE_MARGIN,
        tracer: Tracer | None = None,
        region: str = DEFAULT_REGION,
        clock: Clock = SYSTEM_CLOCK,
        nodes: Callable[[], int] | None = None,
    ) -> None:
        """``region``: the node's, named by AWS's event shapes. ``clock``: where an
        event's age and a dead letter's time are read (the bus's clock). ``nodes``: how
        many nodes run the trigger, who share its flow limits (one by default)."""
        self._clock = clock
        # Per-key concurrency, rate, debounce and priority (flow.py), asked in ``_run``.
        self._gate = (
            FlowGate(subscription.flow, nodes=nodes, on_wait=lambda: self._slot_freed.set())
            if subscription.flow
            else None
        )
        self.subscription = subscription
        self._tracer = tracer
        self._region = region
        self._bus = bus
        self._executor = executor
        self._resolve = resolve
        self._recorder = recorder
        self._emitter = emitter
        self._rand = rand or random.Random()
        self._matchers = [compile_pattern(f) for f in subscription.filters]
        self._envelope_matchers = [compile_pattern(f) for f in subscription.envelope_filters]
        self._inflight: set[asyncio.Task[object]] = set()
        self._slot_freed = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []
        self._stopping = False
        # Leased events not yet settled, by (topic, offset): their leases are kept alive
        # while they wait for a free environment or run.
        self._held: set[tuple[str, int]] = set()
        self._holding = asyncio.Event()  # set while ``_held`` may be non-empty
        # A node that dies holding events gives them back after this margin past the
        # function's timeout: on a cluster, how long until another node takes them.
        self._lease_margin = lease_margin
        self._lease = lease_margin
        # Acknowledgements wait here a moment so one bus call settles many events.
        self._acks: dict[str, list[int]] = {}
        self._ack_ready = asyncio.Event()
        self._ordered = bool(subscription.ordering_key)
        self._lanes: dict[str, Lane] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        # Topics whose group others still hold leases on (ordered triggers): nothing of
        # them starts before those events came back.
        self._barred: set[str] = set()

    def _lane(self) -> Lane:
        sub = self.subscription
        return Lane(
            size=sub.batch_size,
            window=sub.batch_window,
            max_bytes=sub.batch_max_bytes,
            key_of=key_reader(sub.ordering_key) if self._ordered else None,
            sizer=event_size,
        )

    async def start(self) -> None:
        sub = self.subscription
        await self._bus.subscribe(sub.topic, sub.id, start=sub.start)
        await self._bus.subscribe(sub.redrive_topic, sub.id, start="earliest")
        for topic in (sub.topic, sub.redrive_topic):
            self._lanes[topic] = self._lane()
            if self._ordered:
                self._barred.add(topic)
            self._loops.append(asyncio.create_task(self._loop(topic), name=f"trigger:{sub.id}"))
        self._keepers = [
            asyncio.create_task(self._keep_leases(), name=f"leases:{sub.id}"),
            asyncio.create_task(self._flush_acks(), name=f"acks:{sub.id}"),
        ]
        if self._ordered:
            self._keepers.append(asyncio.create_task(self._clear(), name=f"clear:{sub.id}"))

    async def stop(self, *, grace: float) -> None:
        """Stop leasing; let invocations in flight finish within ``grace`` seconds; the
        events of those still running, and of the batches not started, are released to
        the bus."""
        self._stopping = True
        for task in self._loops:
            task.cancel()
        for task in self._loops:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._gate is not None:
            self._gate.close()  # what waits in it goes back to the bus now
        for timer in self._timers.values():
            timer.cancel()
        if self._inflight:
            _done, pending = await asyncio.wait(self._inflight, timeout=grace)
            for running in pending:
                running.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for topic, lane in self._lanes.items():
            with contextlib.suppress(Exception):
                await self._release(topic, [d.offset for d in lane.drain()])
        for task in self._keepers:
            task.cancel()
        await asyncio.gather(*self._keepers, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self._ack_now()

    async def _loop(self, topic: str) -> None:
        sub = self.subscription
        backoff = 0.5
        while not self._stopping:
            try:
                spec = await self._resolve(sub.function, sub.qualifier)
                # Lease a few rounds ahead of the free environments, so leasing is not a
                # round trip per invocation; the lease keeper extends what waits. Once
                # leased ahead, lease again only when half of that has drained: one
                # bigger lease call rather than one per finished invocation. While
                # others' leases are awaited, lease on regardless: their events come
                # back only through a fetch.
                window = spec.max_concurrency * PREFETCH * sub.batch_size
                if self._ordered:
                    window *= ORDERED_SPREAD
                held = len(self._held)
                if self._gate is not None:
                    held = self._gate.occupied(held)
                room = window - held
                if topic in self._barred:
                    room = MAX_FETCH * sub.batch_size
                elif room <= 0 or (room < window // 2 and held > window // 4):
                    self._slot_freed.clear()
                    await self._slot_freed.wait()
                    continue
                self._lease = spec.timeout + self._lease_margin
                deliveries = await self._bus.fetch(
                    topic,
                    sub.id,
                    max_count=min(room, MAX_FETCH * sub.batch_size),
                    lease=self._lease,
                    wait=CLEAR_POLL if topic in self._barred else FETCH_WAIT,
                )
                if deliveries:
                    # The lease call may have waited through a deploy or an alias move:
                    # run the version the alias names now (resolving is a cache look-up).
                    spec = await self._resolve(sub.function, sub.qualifier)
                await self._dispatch(topic, spec, deliveries)
                backoff = 0.5
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # A store or bus hiccup (or a function deleted under the trigger) must not
                # end the trigger: log it and try again, a bit later each time. A missing
                # alias (not created yet, or deleted) is expected: its events wait in the
                # topic until it exists, and one line says so; so is a store or bus that
                # is away (the node reconnects by itself), without a traceback.
                if isinstance(exc, NotFoundError | AdapterError):
                    log.warning("trigger %s: %s; retrying in %.1fs", sub.id, exc, backoff)
                else:
                    log.exception(
                        "trigger %s: delivery loop failed; retrying in %.1fs", sub.id, backoff
                    )
                await asyncio.sleep(backoff)
                # At most a few seconds: a store or bus that comes back is used again
                # soon after, not after a pause that grew through a long outage.
                backoff = min(backoff * 2, MAX_BACKOFF)

    async def _dispatch(
        self, topic: str, spec: FunctionSpec, deliveries: Sequence[Delivery]
    ) -> None:
        if not deliveries:
            return
        wanted: list[Delivery] = []
        skipped: list[int] = []
        for delivery in deliveries:
            if self._matches(delivery.event):
                wanted.append(delivery)
            else:
                skipped.append(delivery.offset)
        if skipped:
            self._ack(topic, skipped)
        self._held.update((topic, d.offset) for d in wanted)
        if wanted:
            self._holding.set()
            self._lanes[topic].add(wanted, self._now())
            self._start_ready(topic)

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _start_ready(self, topic: str) -> None:
        """Start every batch of ``topic`` that is ready, and wake up again when the next
        one will be by the clock (a window or a retry delay ending)."""
        lane = self._lanes[topic]
        if self._stopping or topic in self._barred:
            return
        now = self._now()
        # Without a gate or an order, a batch needs nothing around its invocation: it
        # runs as ``_handle`` alone (one coroutine a batch, not two).
        plain = self._gate is None and not self._ordered
        for batch in lane.take(now):
            work = self._handle(topic, None, batch.deliveries) if plain else self._run(topic, batch)
            task = asyncio.create_task(work)
            self._inflight.add(task)
            task.add_done_callback(self._finished)
        timer = self._timers.pop(topic, None)
        if timer is not None:
            timer.cancel()
        due = lane.next_due()
        if due is not None:
            loop = asyncio.get_running_loop()
            self._timers[topic] = loop.call_at(max(due, now), self._start_ready, topic)

    async def _run(self, topic: str, batch: Batch) -> None:
        """The one place a batch starts: every invocation of the trigger begins here."""
        sub = self.subscription
        retry: list[tuple[Delivery, float]] = []
        permit: Permit | None = None
        try:
            # flow gate: a gate that makes a batch wait goes here; its events stay held
            # (their leases kept) and its key stays busy meanwhile.
            if self._gate is not None:
                permit = await self._admit(topic, batch)
                if permit is None:
                    return
            # A weighted alias picks the version of each invocation (a cached look-up).
            spec = await self._resolve(sub.function, sub.qualifier)
            retry = await self._handle(topic, spec, batch.deliveries)
        except Exception:
            if not self._ordered:
                # Stop holding the events: their leases end and the bus delivers them
                # again.
                self._held.difference_update((topic, d.offset) for d in batch.deliveries)
                raise
            # A failure of Triggerfish itself: keep the key's place, try again shortly.
            retry = [(d, MAX_BACKOFF) for d in batch.deliveries]
            log.exception("trigger %s: handling failed; retrying", sub.id)
        finally:
            if permit is not None:
                permit.release()
            if self._ordered:
                delay = max((delay for _, delay in retry), default=0.0)
                lane = self._lanes[topic]
                lane.finished(batch, [d for d, _ in retry], due=self._now() + delay)
                self._start_ready(topic)

    async def _admit(self, topic: str, batch: Batch) -> Permit | None:
        """Wait for the flow gate: a permit to start, or None when the batch is done
        without an invocation: replaced by a later event of its debounce key (recorded,
        then acknowledged), or the trigger stops (released to the bus)."""
        assert self._gate is not None
        sub = self.subscription
        offsets = [d.offset for d in batch.deliveries]
        spec = await self._resolve(sub.function, sub.qualifier)
        try:
            permit = await self._gate.admit(batch.deliveries, slots=spec.max_concurrency)
        except GateClosedError:
            await self._release(topic, offsets)
            return None
        if permit.superseded:
            await record_superseded(self._bus, sub.debounced_topic, batch.deliveries)
            self._ack(topic, offsets)
            return None
        return permit

    async def _clear(self) -> None:
        """Open the topics of an ordered trigger once nobody else holds leases on its
        group: what a node that died (or the runner this one replaces) held comes back
        to this runner first, so it runs before the events of the same keys after it."""
        sub = self.subscription
        while self._barred:
            for topic in list(self._barred):
                try:
                    (group,) = [g for g in await self._bus.groups(topic) if g.group == sub.id]
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("trigger %s: cannot read its group yet: %s", sub.id, exc)
                    continue
                mine = sum(1 for t, _ in self._held if t == topic)
                if group.in_flight <= mine:
                    self._barred.discard(topic)
                    self._start_ready(topic)
            if self._barred:
                await asyncio.sleep(CLEAR_POLL)

    def _finished(self, task: asyncio.Task[object]) -> None:
        self._inflight.discard(task)
        self._slot_freed.set()
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "trigger %s: handling failed", self.subscription.id, exc_info=task.exception()
            )

    def _matches(self, event: Event) -> bool:
        if not self._matchers and not self._envelope_matchers:
            return True
        try:
            if self._matchers:
                view = event_view(event)
                if not all(matcher.matches(view) for matcher in self._matchers):
                    return False
            if self._envelope_matchers:
                envelope = shapes.eventbridge_event(event, self._region)
                return all(matcher.matches(envelope) for matcher in self._envelope_matchers)
            return True
        except Exception:
            log.exception("trigger %s: pattern failed on event %s", self.subscription.id, event.id)
            return False

    async def _handle(
        self, topic: str, spec: FunctionSpec | None, deliveries: Sequence[Delivery]
    ) -> list[tuple[Delivery, float]]:
        """Invoke, then settle. Returns the events to retry here after their delay (an
        ordered trigger's; an unordered one hands its retries to the bus). ``spec``:
        None to resolve it here (a weighted alias picks the version of each batch)."""
        sub = self.subscription
        offsets = [d.offset for d in deliveries]
        trace: DispatchTrace | None = None
        retry: list[tuple[Delivery, float]] = []
        try:
            if spec is None:
                spec = await self._resolve(sub.function, sub.qualifier)
            shaped = shapes.shape(
                sub.payload,
                deliveries,
                batched=sub.batch_size > 1,
                topic=sub.topic,
                region=spec.region,
            )
            if shaped.unshaped:
                # An event the handler's payload cannot be built from fails its attempt
                # as a failed invocation does (retried, then dead-lettered), rather
                # than coming back each time its lease ends, for ever.
                log.warning("trigger %s: %s", sub.id, shaped.error)
                retry += await self._failed(
                    topic, spec, shaped.unshaped, shaped.failure(sub.payload)
                )
            if shaped.payload is None:
                return retry
            payload, deliveries = shaped.payload, shaped.deliveries
            offsets = [d.offset for d in deliveries]
            if self._tracer is not None:
                trace = self._trace(self._tracer, topic, spec, deliveries)
            request = InvocationRequest(
                request_id=new_id(),
                payload=payload,
                trace_id=_trace_id(deliveries[0].event)
                if trace is None
                else trace.invocation.traceparent,
                trace_state=None if trace is None else trace.invocation.handler.state,
            )
            result = await self._executor.invoke(spec, request)
            if trace is not None:
                trace.invocation.finished(result)
                trace.invocation.emitting(result)
            attempt = max(d.attempt for d in deliveries)
            chain: list[ChainEvent] = []
            if result.status == "ok":
                try:
                    events = await self._emitter.publish(
                        spec.function, result.emitted, deliveries[0].event
                    )
                    published = [(r.topic, e) for r, e in zip(result.emitted, events, strict=True)]
                    published += await self._emitter.succeeded(
                        spec, deliveries, result, payload=payload, attempt=attempt
                    )
                    if published:
                        # The chain goes on: its handled events are kept with what they
                        # led to (an invocation that emits nothing is its own record).
                        chain = chains.handled(deliveries, sub.topic)
                        chain += chains.emitted(result.request_id, published)
                except TriggerfishError as exc:
                    result.status = "error"
                    result.error_type = "EmitError"
                    result.error_message = str(exc)
                if trace is not None:
                    trace.invocation.published(error=result.error_message)
            self._recorder.record(
                spec,
                result,
                trigger=sub.id,
                event_ids=[d.event.id for d in deliveries],
                attempt=attempt,
                request_bytes=len(payload),
                correlation=chains.recorded(
                    deliveries[0].event, bool(chain) or result.status != "ok"
                ),
                events=chain,
            )
            if result.status != "ok":
                return retry + await self._failed(topic, spec, deliveries, result)
            failed = shapes.failed_items(result.result) if sub.batch_size > 1 else None
            if not failed:
                self._ack(topic, offsets)
                return retry
            # ReportBatchItemFailures: acknowledge the rest, retry only the items named;
            # in order, the first named and every item after it (as Lambda does for
            # FIFO queues), so no later event of the batch's key is done before it.
            again = [d for d in deliveries if d.event.id in failed]
            if self._ordered and again:
                first = deliveries.index(again[0])
                again = list(deliveries[first:])
            self._ack(topic, [d.offset for d in deliveries if d not in again])
            result.status = "error"
            result.error_type = "BatchItemFailures"
            result.error_message = f"the function reported {len(again)} failed item(s)"
            return retry + await self._failed(topic, spec, again, result)
        except asyncio.CancelledError:
            # Shutdown past the grace period: hand the events back for another delivery.
            with contextlib.suppress(Exception):
                await asyncio.shield(self._release(topic, offsets))
            raise
        except Exception:
            # A failure of Triggerfish itself (the bus, the store): stop holding the
            # events, so their leases end and the bus delivers them again (an ordered
            # trigger keeps them, and their key's place: ``_run``).
            if not self._ordered:
                self._held.difference_update((topic, offset) for offset in offsets)
            raise
        finally:
            if trace is not None:
                trace.finished()

    def _trace(
        self, tracer: Tracer, topic: str, spec: FunctionSpec, deliveries: Sequence[Delivery]
    ) -> DispatchTrace:
        first = deliveries[0]
        return DispatchTrace(
            tracer,
            self.subscription.id,
            first.event,
            topic=topic,
            published_at=min(d.published_at for d in deliveries),
            attempt=max(d.attempt for d in deliveries),
            count=len(deliveries),
            function=spec.function,
            version=spec.version,
        )

    def _ack(self, topic: str, offsets: Sequence[int]) -> None:
        self._acks.setdefault(topic, []).extend(offsets)
        self._held.difference_update((topic, offset) for offset in offsets)
        self._ack_ready.set()

    async def _ack_now(self) -> None:
        acks, self._acks = self._acks, {}
        for topic, offsets in acks.items():
            await self._bus.ack(topic, self.subscription.id, offsets)

    async def _flush_acks(self) -> None:
        while True:
            await self._ack_ready.wait()
            await asyncio.sleep(ACK_DELAY)
            self._ack_ready.clear()
            try:
                await self._ack_now()
            except asyncio.CancelledError:
                raise
            except Exception:
                # Unacknowledged events are delivered again after their lease: no loss.
                log.exception("trigger %s: acknowledging failed", self.subscription.id)

    async def _keep_leases(self) -> None:
        """Extend the leases of events that wait for an environment or still run."""
        while True:
            if not self._held:
                # Nothing held: sleep until something is, so an idle trigger has no timer.
                self._holding.clear()
                await self._holding.wait()
            await asyncio.sleep(max(0.05, self._lease / 3))
            by_topic: dict[str, list[int]] = {}
            for topic, offset in list(self._held):
                by_topic.setdefault(topic, []).append(offset)
            for topic, offsets in by_topic.items():
                try:
                    await self._bus.extend(topic, self.subscription.id, offsets, self._lease)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("trigger %s: extending leases failed", self.subscription.id)

    async def _release(self, topic: str, offsets: Sequence[int]) -> None:
        self._held.difference_update((topic, offset) for offset in offsets)
        for offset in offsets:
            await self._bus.nack(topic, self.subscription.id, offset, delay=0.0)

    async def _failed(
        self,
        topic: str,
        spec: FunctionSpec,
        deliveries: Sequence[Delivery],
        result: InvocationResult,
    ) -> list[tuple[Delivery, float]]:
        """Retry or dead-letter ``deliveries``. Returns those an ordered trigger retries
        itself (still held, their attempt counted), each with its delay."""
        sub = self.subscription
        now = self._clock.time()
        dead: list[tuple[Delivery, str]] = []
        kept: list[tuple[Delivery, float]] = []
        for delivery in deliveries:
            reason = not_retried(result.error_type) or sub.retry.gives_up(
                delivery.attempt, now - delivery.published_at
            )
            if reason is None:
                delay = sub.retry.retry_delay(delivery.attempt, self._rand)
                if self._ordered:
                    kept.append((replace(delivery, attempt=delivery.attempt + 1), delay))
                    continue
                self._held.discard((topic, delivery.offset))
                await self._bus.nack(topic, sub.id, delivery.offset, delay=delay)
            else:
                dead.append((delivery, reason))
        if not dead:
            return kept
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        letters = [
            delivery.event.with_extensions(
                errortype=result.error_type or result.status,
                errormessage=(result.error_message or "")[:4096],
                errorstatus=result.status,
                errorattempts=delivery.attempt,
                errortrigger=sub.id,
                errorfunction=spec.function,
                errorreason=reason,
                errortime=stamp,
            )
            for delivery, reason in dead
        ]
        await self._bus.publish(sub.dead_letter_topic, letters, dedupe=False)
        await self._emitter.failed(spec, sub, dead, result)
        self._ack(topic, [d.offset for d, _ in dead])
        log.warning(
            "trigger %s: %d event(s) dead-lettered to %s (%s)",
            sub.id,
            len(letters),
            sub.dead_letter_topic,
            dead[0][1],
        )
        return kept


def _trace_id(event: Event) -> str | None:
    traceparent = event.extensions.get("traceparent")
    return traceparent if isinstance(traceparent, str) else None
