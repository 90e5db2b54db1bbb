"""NatsBus: the Bus on NATS JetStream, shared by every Triggerfish node of a cluster.

How the Bus maps onto JetStream (``docs/cluster.md`` says the same for users):

- A topic is a stream ``<prefix>_<topic>`` holding one subject ``<prefix>.t.<topic>``
  (names encoded by ``_nats_names``; the topic's own name is the stream's description).
  Offsets are the stream's sequence numbers, the retention is its ``max_age``, and
  publish times are JetStream's own timestamps.
- A consumer group is a durable pull consumer of that stream with explicit acks:
  ``earliest`` delivers all, ``latest`` delivers new. ``attempt`` is JetStream's
  delivery count; ``cursor`` the highest sequence delivered; ``backlog`` its pending count.
- Dedupe on ``(source, id)`` is JetStream's: a ``Nats-Msg-Id`` header and the stream's
  duplicate window, set to the bus's dedupe window (capped at the topic's retention,
  which JetStream requires). A duplicate's answer names the original's sequence.

Promises: ``publish`` returns after JetStream acknowledged every event; ``ack``,
``nack`` and ``extend`` return after JetStream applied them. Where JetStream's model
forces another trade-off than ``SqliteBus``:

- A lease is the consumer's ack wait, which moves every message in flight when changed;
  the bus only ever raises it (to the longest lease fetched) and ends shorter leases
  itself (``_nats_leases``). After a crash, a lease ends after the ack wait.
- ``ack``, ``nack`` and ``extend`` act on deliveries this instance handed out (JetStream
  settles a message through the reply subject of its delivery); others are ignored.
- ``waiting_retry`` counts the delayed releases of this instance: JetStream counts a
  released message as pending acknowledgement until it is delivered again.
- ``seek`` deletes the consumer and creates it again at the position: leases in flight
  at that moment are dropped, and their events delivered again from the new position.
- Retention is applied by JetStream, also to events a group still holds; ``trim``
  reports what it removed since the bus last looked.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import msgspec

from triggerfish.bus._common import (
    check_fetch_arguments,
    check_retention,
    check_topic_name,
    unknown_topic,
)
from triggerfish.bus._nats_admin import (
    STREAM_NAME_IN_USE,
    STREAM_STORE_FAILED,
    connect,
    list_streams,
    require_driver,
    stream_config,
    translated,
)
from triggerfish.bus._nats_groups import Group, Groups, GroupSettings
from triggerfish.bus._nats_leases import Leases
from triggerfish.bus._nats_names import (
    check_prefix,
    decode,
    message_id,
    redact,
    stream_name,
    subject,
    topics_filter,
)
from triggerfish.bus._nats_reader import first_since, read_stream
from triggerfish.bus._nats_wire import (
    ACK,
    IN_PROGRESS,
    TERM,
    GroupGone,
    Request,
    Wire,
    delivered,
    nak_payload,
    status,
)
from triggerfish.bus.base import (
    Delivery,
    GroupInfo,
    PublishResult,
    StartPosition,
    StoredEvent,
    TopicInfo,
)
from triggerfish.errors import AdapterError, ConfigError, ValidationError
from triggerfish.events.model import Event, decode_event, encode_event

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.js import JetStreamManager
    from nats.js.api import StreamInfo

log = logging.getLogger(__name__)

Storage = Literal["file", "memory"]
_CREATE_AGAIN = (STREAM_NAME_IN_USE, STREAM_STORE_FAILED)


def _decoded(topic: str, offset: int, data: bytes) -> Event | None:
    """The event a message holds; None (and a warning) for a message that some other
    program published on the topic's subject, which is no Triggerfish event."""
    try:
        return decode_event(data)
    except msgspec.DecodeError:
        log.warning("topic %r: offset %d holds no Triggerfish event; skipped", topic, offset)
        return None


class NatsBus:
    """A ``Bus`` on the NATS server at ``url`` (``nats://host:4222``), with JetStream.

    ``prefix`` starts every stream name and subject, so several installations (or test
    runs) share one server. ``replicas`` copies each stream on that many servers of a
    NATS cluster. ``ack_wait`` is the lease a group starts with on the server: how soon
    JetStream delivers again the events of a node that died. ``max_in_flight`` bounds the
    leased and released events of one group (None: no bound). ``timeout`` bounds every
    call to the server; ``connect_timeout`` how long ``start`` tries to reach it.
    """

    def __init__(
        self,
        url: str,
        *,
        dedupe_window: float = 86400.0,
        prefix: str = "tf",
        replicas: int = 1,
        ack_wait: float = 30.0,
        max_in_flight: int | None = None,
        storage: Storage = "file",
        timeout: float = 10.0,
        connect_timeout: float = 10.0,
    ) -> None:
        require_driver()
        if replicas < 1:
            raise ConfigError(f"NATS bus replicas must be 1 or more, not {replicas}")
        if not dedupe_window > 0 or not ack_wait > 0:
            raise ConfigError("NATS bus dedupe_window and ack_wait must be positive seconds")
        if storage not in ("file", "memory"):
            raise ConfigError(f"NATS bus storage must be 'file' or 'memory', not {storage!r}")
        self._url = url
        self._where = redact(url)
        self._dedupe_window = dedupe_window
        self._prefix = check_prefix(prefix)
        self._replicas = replicas
        self._ack_wait = ack_wait
        self._max_in_flight = max_in_flight if max_in_flight is not None else -1
        self._storage = storage
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._nc: Client | None = None
        self._jsm: JetStreamManager | None = None
        self._wire: Wire | None = None
        self._group_table: Groups | None = None
        self._leases = Leases(self._lease_ran_out)
        self._removed: dict[str, int] = {}  # stream -> events it had lost when last seen

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        if self._nc is not None:
            return
        nc, jsm = await connect(
            self._url, where=self._where, api_timeout=self._timeout, within=self._connect_timeout
        )
        wire = Wire(nc, timeout=self._timeout)
        await wire.start()
        settings = GroupSettings(
            self._prefix, self._where, self._ack_wait, self._max_in_flight, self._timeout
        )
        self._group_table = Groups(nc, jsm, wire, self._leases, settings)
        self._nc, self._jsm, self._wire = nc, jsm, wire

    async def stop(self) -> None:
        """Close the connection; leases still held end on the server (their ack wait)."""
        nc, wire = self._nc, self._wire
        self._nc = self._jsm = self._wire = None
        self._group_table = None
        self._leases.close()
        if wire is not None:
            await wire.close()
        if nc is not None and not nc.is_closed:
            try:
                await asyncio.wait_for(nc.drain(), self._timeout)
            except Exception:
                await nc.close()

    async def __aenter__(self) -> NatsBus:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _live(self) -> tuple[Client, JetStreamManager, Wire]:
        if self._nc is None or self._jsm is None or self._wire is None:
            raise AdapterError(f"the NATS bus for {self._where} is not started")
        return self._nc, self._jsm, self._wire

    def _translated(
        self, action: str, topic: str | None = None, group: str | None = None
    ) -> AbstractContextManager[None]:
        return translated(self._where, action, topic, group)

    # -- topics --------------------------------------------------------------------------

    async def create_topic(self, name: str, *, retention: float | None = None) -> None:
        from nats.js.errors import APIError, NotFoundError

        check_topic_name(name)
        check_retention(retention)
        _, jsm, _ = self._live()
        stream = stream_name(self._prefix, name)
        wanted = stream_config(
            stream, name, subject(self._prefix, name), retention=retention,
            dedupe_window=self._dedupe_window, storage=self._storage, replicas=self._replicas,
        )  # fmt: skip
        with self._translated(f"create topic {name!r}"):
            for attempt in range(1, 6):
                try:
                    info = await jsm.stream_info(stream)
                except NotFoundError:
                    try:
                        await jsm.add_stream(wanted)
                    except APIError as exc:
                        # Another node created it meanwhile (with another retention); or
                        # the server was removing the directory of the account's last
                        # stream, deleted a moment ago (nats-server 2.9): try again.
                        if attempt == 5 or exc.err_code not in _CREATE_AGAIN:
                            raise
                        await asyncio.sleep(0.05 * attempt)
                        continue
                    self._removed[stream] = 0
                    return
                break
            config = info.config
            if (config.max_age or 0.0, config.duplicate_window) != (
                wanted.max_age,
                wanted.duplicate_window,
            ):
                config.max_age, config.duplicate_window = wanted.max_age, wanted.duplicate_window
                await jsm.update_stream(config)
            self._removed.setdefault(stream, info.state.last_seq - info.state.messages)

    async def delete_topic(self, name: str) -> None:
        _, jsm, _ = self._live()
        stream = stream_name(self._prefix, name)
        with self._translated(f"delete topic {name!r}", topic=name):
            await jsm.delete_stream(stream)
        self._removed.pop(stream, None)
        self._leases.drop_topic(name)
        self._groups().forget(name)

    async def topics(self) -> list[TopicInfo]:
        infos = await self._streams()
        return sorted((self._topic_info(info) for info in infos), key=lambda t: t.name)

    async def topic(self, name: str) -> TopicInfo:
        _, jsm, _ = self._live()
        with self._translated(f"describe topic {name!r}", topic=name):
            info = await jsm.stream_info(stream_name(self._prefix, name))
        return self._topic_info(info)

    async def _streams(self) -> list[StreamInfo]:
        nc, _, _ = self._live()
        with self._translated("list topics"):
            return await list_streams(nc, topics_filter(self._prefix), self._timeout)

    @staticmethod
    def _topic_info(info: StreamInfo) -> TopicInfo:
        config, state = info.config, info.state
        name = config.description or decode((config.name or "").partition("_")[2])
        count = state.messages
        return TopicInfo(
            name=name,
            retention=config.max_age or None,
            first_offset=state.first_seq if count else None,
            last_offset=state.last_seq if count else None,
            count=count,
        )

    # -- publishing and reading ----------------------------------------------------------

    async def publish(
        self, topic: str, events: Sequence[Event], *, dedupe: bool = True
    ) -> list[PublishResult]:
        """``dedupe=False`` sends no message id: JetStream stores the event again, and
        does not remember its pair for later publishes either."""
        _, _, wire = self._live()
        if not events:
            await self.topic(topic)
            return []
        stream = stream_name(self._prefix, topic)
        target = subject(self._prefix, topic)
        requests: list[Request] = []
        for event in events:
            headers = {"Nats-Expected-Stream": stream}
            if dedupe:
                headers["Nats-Msg-Id"] = message_id(event.source, event.id)
            requests.append((target, encode_event(event), headers))
        with self._translated(f"publish to topic {topic!r}", topic=topic):
            answers = await wire.request_all(requests)
        results: list[PublishResult] = []
        for event, answer in zip(events, answers, strict=True):
            if status(answer) == "503":
                raise unknown_topic(topic)
            ack = json.loads(answer.data)
            if "error" in ack:
                reason = ack["error"].get("description", "refused")
                raise AdapterError(f"JetStream did not store an event on topic {topic!r}: {reason}")
            duplicate = bool(ack.get("duplicate", False))
            results.append(PublishResult(event.id, event.source, int(ack["seq"]), duplicate))
        return results

    async def read(
        self, topic: str, *, after: int = 0, since: float | None = None, limit: int = 100
    ) -> list[StoredEvent]:
        _, jsm, wire = self._live()
        if limit < 1:
            await self.topic(topic)
            return []
        stream = stream_name(self._prefix, topic)
        with self._translated(f"read topic {topic!r}", topic=topic):
            first = after + 1
            if since is not None:
                first = max(first, await first_since(jsm, wire, stream, since))
            stored = await read_stream(jsm, wire, stream, first=first, limit=limit)
        return [
            StoredEvent(topic, meta.offset, event, meta.published_at)
            for meta, data in stored
            if (event := _decoded(topic, meta.offset, data)) is not None
        ]

    # -- consumer groups -----------------------------------------------------------------

    def _groups(self) -> Groups:
        if self._group_table is None:
            raise AdapterError(f"the NATS bus for {self._where} is not started")
        return self._group_table

    async def subscribe(self, topic: str, group: str, *, start: StartPosition = "latest") -> None:
        await self._groups().subscribe(topic, group, start)

    async def unsubscribe(self, topic: str, group: str) -> None:
        await self._groups().unsubscribe(topic, group)

    async def groups(self, topic: str | None = None) -> list[GroupInfo]:
        groups = self._groups()
        if topic is not None:
            return await groups.describe([topic], strict=True)
        return await groups.describe([t.name for t in await self.topics()], strict=False)

    async def fetch(
        self, topic: str, group: str, *, max_count: int, lease: float, wait: float = 0.0
    ) -> list[Delivery]:
        """Retries come first because JetStream delivers redeliveries before new events.
        With ``wait``, a first pull waits for one event and a second takes what follows."""
        check_fetch_arguments(max_count, lease, wait)
        groups = self._groups()
        state = await groups.get(topic, group)
        await groups.cover(topic, group, state, lease)
        msgs = await self._pull(topic, group, state, max_count, None)
        if not msgs and wait > 0:
            msgs = await self._pull(topic, group, state, 1, wait)
            if msgs and max_count > 1:
                msgs += await self._pull(topic, group, state, max_count - 1, None)
        now = time.time()
        until = now + lease
        out: list[Delivery] = []
        for msg in msgs:
            meta = delivered(msg.reply)
            event = _decoded(topic, meta.offset, msg.data)
            if event is None:  # never to be delivered: take it out of the group for good
                self._settle_later(msg.reply, TERM)
                continue
            self._leases.hold((topic, group), meta.offset, msg.reply, until, now + state.ack_wait)
            out.append(
                Delivery(topic, group, meta.offset, event, meta.attempt, meta.published_at, until)
            )
        out.sort(key=lambda d: d.offset)
        return out

    async def _pull(
        self, topic: str, group: str, state: Group, batch: int, wait: float | None
    ) -> list[Msg]:
        _, _, wire = self._live()
        try:
            with self._translated(f"fetch for group {group!r} of topic {topic!r}", topic, group):
                return await wire.pull(state.stream, state.consumer, batch=batch, wait=wait)
        except AdapterError as exc:
            if not isinstance(exc.__cause__, GroupGone):
                raise
        # The consumer did not answer: gone (NotFoundError), or replaced meanwhile.
        await self._groups().check(topic, group)
        return []

    async def ack(self, topic: str, group: str, offsets: Sequence[int]) -> None:
        key = (topic, group)
        await self._groups().get(topic, group)
        replies = [r for r in (self._leases.take(key, o) for o in offsets) if r is not None]
        await self._settle(topic, group, [(reply, ACK, None) for reply in replies])

    async def nack(self, topic: str, group: str, offset: int, *, delay: float) -> None:
        if not delay >= 0:
            raise ValidationError(f"delay must be zero or more seconds, not {delay}", field="delay")
        key = (topic, group)
        await self._groups().get(topic, group)
        reply = self._leases.take(key, offset)
        if reply is None:
            return
        self._leases.release(key, offset, reply, time.time() + delay)
        await self._settle(topic, group, [(reply, nak_payload(delay), None)])

    async def extend(self, topic: str, group: str, offsets: Sequence[int], lease: float) -> None:
        """An in-progress answer restarts JetStream's ack wait for each event."""
        check_fetch_arguments(1, lease, 0.0)
        key = (topic, group)
        groups = self._groups()
        state = await groups.get(topic, group)
        await groups.cover(topic, group, state, lease)
        now = time.time()
        replies: list[str] = []
        for offset in offsets:
            held = self._leases.get(key, offset)
            if held is not None:
                self._leases.renew(key, offset, now + lease, now + state.ack_wait)
                replies.append(held.reply)
        await self._settle(topic, group, [(reply, IN_PROGRESS, None) for reply in replies])

    async def _settle(self, topic: str, group: str, requests: list[Request]) -> None:
        if not requests:
            return
        _, _, wire = self._live()
        with self._translated(f"settle events of group {group!r} of topic {topic!r}"):
            answers = await wire.request_all(requests)
        if any(status(answer) == "503" for answer in answers):
            # Nobody answers for the consumer: it is gone, or being replaced.
            await self._groups().check(topic, group)

    def _lease_ran_out(self, topic: str, group: str, offset: int, reply: str) -> None:
        """A lease shorter than the ack wait ended: release the event for the next fetch."""
        self._settle_later(reply, nak_payload(0.0))

    def _settle_later(self, reply: str, answer: bytes) -> None:
        wire = self._wire
        if wire is None:
            return

        async def settle() -> None:
            try:
                await wire.request_all([(reply, answer, None)])
            except Exception:
                log.debug("answering %s with %r failed", reply, answer, exc_info=True)

        wire.spawn(settle())

    # -- replay and retention ------------------------------------------------------------

    async def seek(
        self, topic: str, group: str, *, offset: int | None = None, since: float | None = None
    ) -> int:
        """Replaces the group's consumer at the position (see ``Groups.seek``)."""
        if (offset is None) == (since is None):
            raise ValidationError("seek needs exactly one of offset or since", field="offset")
        return await self._groups().seek(topic, group, offset, since)

    async def trim(self) -> int:
        """JetStream applies retention (``max_age``) and forgets message ids after the
        duplicate window by itself; this counts the events its streams lost since the
        bus last looked (at ``create_topic`` or the previous ``trim``)."""
        removed = 0
        for info in await self._streams():
            name = info.config.name or ""
            lost = info.state.last_seq - info.state.messages
            before = self._removed.get(name)
            self._removed[name] = lost
            if before is not None:
                removed += max(lost - before, 0)
        return removed
