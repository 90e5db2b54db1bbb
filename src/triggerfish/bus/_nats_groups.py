"""The consumer groups of the NATS bus: one durable pull consumer of a topic's stream each.

``Groups`` lives as long as one connection. It creates, describes and deletes the
consumers, remembers the ones it looked up (their names and ack wait) so that a fetch or
an acknowledgement costs no lookup, raises a consumer's ack wait when a longer lease is
asked for, and replaces a consumer at another position for a replay.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from triggerfish.bus._nats_admin import (
    CONSUMER_EXISTS,
    CONSUMER_NAME_EXISTS,
    CONSUMER_NOT_FOUND,
    group_config,
    list_consumers,
    translated,
)
from triggerfish.bus._nats_leases import Leases
from triggerfish.bus._nats_names import consumer_name, decode, stream_name
from triggerfish.bus._nats_reader import first_since
from triggerfish.bus._nats_wire import Wire
from triggerfish.bus.base import GroupInfo, StartPosition
from triggerfish.errors import TriggerfishError

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js import JetStreamManager
    from nats.js.api import ConsumerInfo


@dataclass(slots=True)
class Group:
    stream: str
    consumer: str
    ack_wait: float  # seconds, as last seen or set
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass(frozen=True, slots=True)
class GroupSettings:
    prefix: str
    where: str  # the server, for messages
    ack_wait: float  # of a new group
    max_in_flight: int  # -1: no bound
    timeout: float


class Groups:
    """Consumer groups on one connection, by ``(topic, group)``."""

    def __init__(
        self, nc: Client, jsm: JetStreamManager, wire: Wire, leases: Leases, settings: GroupSettings
    ) -> None:
        self._nc = nc
        self._jsm = jsm
        self._wire = wire
        self._leases = leases
        self._settings = settings
        self._known: dict[tuple[str, str], Group] = {}

    def _names(self, topic: str, group: str) -> tuple[str, str]:
        return stream_name(self._settings.prefix, topic), consumer_name(group)

    def _remember(self, topic: str, group: str, stream: str, info: ConsumerInfo) -> Group:
        ack_wait = info.config.ack_wait or self._settings.ack_wait
        state = self._known[(topic, group)] = Group(stream, info.name, ack_wait)
        return state

    def forget(self, topic: str, group: str | None = None) -> None:
        for key in [k for k in self._known if k[0] == topic and group in (None, k[1])]:
            del self._known[key]

    async def subscribe(self, topic: str, group: str, start: StartPosition) -> None:
        from nats.js.errors import APIError

        stream, consumer = self._names(topic, group)
        where = self._settings.where
        with translated(where, f"subscribe {group!r} to topic {topic!r}", topic):
            try:
                info = await self._jsm.consumer_info(stream, consumer)
            except APIError as exc:
                if exc.err_code != CONSUMER_NOT_FOUND:
                    raise
                config = group_config(
                    consumer, group, start=start, ack_wait=self._settings.ack_wait,
                    max_in_flight=self._settings.max_in_flight,
                )  # fmt: skip
                try:
                    info = await self._jsm.add_consumer(stream, config)
                except APIError as again:  # another node created it meanwhile
                    if again.err_code not in (CONSUMER_EXISTS, CONSUMER_NAME_EXISTS):
                        raise
                    info = await self._jsm.consumer_info(stream, consumer)
        self._remember(topic, group, stream, info)

    async def unsubscribe(self, topic: str, group: str) -> None:
        from nats.js.errors import APIError

        stream, consumer = self._names(topic, group)
        where = self._settings.where
        with translated(where, f"unsubscribe {group!r} from topic {topic!r}", topic):
            try:
                await self._jsm.delete_consumer(stream, consumer)
            except APIError as exc:
                if exc.err_code != CONSUMER_NOT_FOUND:
                    raise
        self.forget(topic, group)
        self._leases.drop((topic, group))

    async def get(self, topic: str, group: str) -> Group:
        """The group's consumer, remembered or looked up (NotFoundError if none)."""
        known = self._known.get((topic, group))
        if known is not None:
            return known
        stream, consumer = self._names(topic, group)
        where = self._settings.where
        with translated(where, f"find group {group!r} of topic {topic!r}", topic, group):
            info = await self._jsm.consumer_info(stream, consumer)
        return self._remember(topic, group, stream, info)

    async def check(self, topic: str, group: str) -> None:
        """The consumer did not answer: look it up again (NotFoundError if it is gone)."""
        self.forget(topic, group)
        await self.get(topic, group)

    async def describe(self, topics: list[str], *, strict: bool) -> list[GroupInfo]:
        """The groups of ``topics``; with ``strict``, an unknown topic is NotFoundError
        (otherwise skipped: deleted since it was listed). ``in_flight`` is what JetStream
        counts as pending acknowledgement, less the delayed releases of this instance
        (``waiting_retry``): JetStream tells the two apart nowhere."""
        out: list[GroupInfo] = []
        for topic in topics:
            stream = stream_name(self._settings.prefix, topic)
            try:
                with translated(self._settings.where, f"list groups of {topic!r}", topic):
                    consumers = await list_consumers(self._nc, stream, self._settings.timeout)
            except TriggerfishError:
                if strict:
                    raise
                continue
            for info in consumers:
                if not info.config.durable_name:
                    continue  # a reader of ``read``, not a group
                group = info.config.description or decode(info.name)
                waiting = self._leases.waiting((topic, group))
                out.append(
                    GroupInfo(
                        topic=topic,
                        group=group,
                        cursor=info.delivered.stream_seq if info.delivered else 0,
                        backlog=info.num_pending or 0,
                        in_flight=max((info.num_ack_pending or 0) - waiting, 0),
                        waiting_retry=waiting,
                    )
                )
        return sorted(out, key=lambda g: (g.topic, g.group))

    async def cover(self, topic: str, group: str, state: Group, lease: float) -> None:
        """Raise the consumer's ack wait to ``lease`` if it is shorter. Never lower it:
        JetStream applies the ack wait to every event in flight at once, so that would
        cut short the leases other fetches hold."""
        if lease <= state.ack_wait:
            return
        async with state.lock:
            if lease <= state.ack_wait:
                return
            where = self._settings.where
            with translated(where, f"lengthen the leases of group {group!r}", topic, group):
                info = await self._jsm.consumer_info(state.stream, state.consumer)
                if (info.config.ack_wait or 0.0) < lease:
                    info.config.ack_wait = lease
                    info = await self._jsm.add_consumer(state.stream, info.config)
            raised = info.config.ack_wait or lease
            self._leases.stretch((topic, group), raised - state.ack_wait)
            state.ack_wait = raised

    async def seek(self, topic: str, group: str, offset: int | None, since: float | None) -> int:
        """Replace the consumer by one with the same settings that starts at ``offset``
        (or at the first event stamped at or after ``since``); JetStream cannot move a
        consumer. Leases in flight are dropped: their events are delivered again from
        the new position. A time becomes an offset first, because JetStream 2.9 cannot
        update a consumer that starts at a time, and a group must keep its ack wait
        updatable. Returns how many events the new consumer has to deliver."""
        from nats.js import api

        state = await self.get(topic, group)
        async with state.lock:
            where = self._settings.where
            with translated(where, f"replay group {group!r} of topic {topic!r}", topic, group):
                first = offset
                if first is None:
                    assert since is not None  # the bus checked it
                    first = await first_since(self._jsm, self._wire, state.stream, since)
                config = (await self._jsm.consumer_info(state.stream, state.consumer)).config
                config.deliver_policy = api.DeliverPolicy.BY_START_SEQUENCE
                config.opt_start_seq, config.opt_start_time = max(first, 1), None
                await self._jsm.delete_consumer(state.stream, state.consumer)
                self._leases.drop((topic, group))
                created = await self._jsm.add_consumer(state.stream, config)
            state.ack_wait = created.config.ack_wait or state.ack_wait
        requeued: int = created.num_pending or 0
        return requeued
