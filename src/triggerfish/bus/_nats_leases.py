"""The leases one NATS bus instance handed out, and the retries it scheduled.

JetStream settles a delivered message through the reply subject it was delivered with,
and redelivers it when the consumer's ack wait passes without an answer. The ack wait
belongs to the consumer, not to a delivery, and changing it moves the deadline of every
message in flight at once; so the bus never lowers it (``_nats_groups``), and a lease
shorter than the ack wait is ended here instead: when it runs out, the bus that handed
it out releases the message itself (a NAK), and JetStream delivers it again at once. If
that process is gone, the ack wait ends the lease, later than the lease said.

``Leases`` keeps, per ``(topic, group, offset)``, the reply subject, when the caller's
lease ends and when JetStream's own would, and a timer at the end of the lease. Once a
lease ended, or the event was released with ``nack``, its reply subject is kept a while
longer, so that a late ``ack`` still settles the event, and a release with a delay is
counted by ``groups()`` as waiting for its retry: JetStream counts it as pending
acknowledgement like a lease, and cannot tell the two apart.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

#: A lease ending this close to JetStream's own deadline is left to JetStream: releasing
#: it as well could release the next delivery of the same message.
MARGIN = 0.25
#: Seconds a released event's reply subject is kept after it fell due, so that a late
#: ``ack`` still settles it; after that the event is someone else's to settle.
KEEP_RELEASED = 60.0

Key = tuple[str, str]  # (topic, group)
Expire = Callable[[str, str, int, str], None]  # (topic, group, offset, reply)


@dataclass(slots=True)
class Lease:
    reply: str
    until: float  # when the caller's lease ends, unix seconds
    server_until: float  # when JetStream redelivers on its own, unix seconds
    timer: asyncio.TimerHandle | None = None


class Leases:
    """Held leases and released events of one bus instance."""

    def __init__(self, expire: Expire, *, clock: Callable[[], float] = time.time) -> None:
        self._expire = expire
        self._clock = clock
        self._held: dict[Key, dict[int, Lease]] = {}
        # Released (by ``nack`` or a lease that ran out): reply subject and due time.
        self._released: dict[Key, dict[int, tuple[str, float]]] = {}

    def hold(self, key: Key, offset: int, reply: str, until: float, server_until: float) -> None:
        """Record a delivery, replacing what was known of the same offset."""
        self.take(key, offset)
        lease = Lease(reply, until, server_until)
        self._held.setdefault(key, {})[offset] = lease
        self._arm(key, offset, lease)

    def get(self, key: Key, offset: int) -> Lease | None:
        """The lease of ``offset`` while it is held (not once released)."""
        return self._held.get(key, {}).get(offset)

    def take(self, key: Key, offset: int) -> str | None:
        """Forget ``offset`` (it is being settled); its reply subject, if known here."""
        lease = self._held.get(key, {}).pop(offset, None)
        if lease is not None:
            if lease.timer is not None:
                lease.timer.cancel()
            return lease.reply
        released = self._released.get(key, {}).pop(offset, None)
        return released[0] if released is not None else None

    def renew(self, key: Key, offset: int, until: float, server_until: float) -> None:
        lease = self.get(key, offset)
        if lease is None:
            return
        if lease.timer is not None:
            lease.timer.cancel()
        lease.until, lease.server_until, lease.timer = until, server_until, None
        self._arm(key, offset, lease)

    def stretch(self, key: Key, by: float) -> None:
        """The group's ack wait grew by ``by`` seconds, and JetStream's deadlines with it:
        leases it would have ended itself are now ended here."""
        for lease in self._held.get(key, {}).values():
            lease.server_until += by

    def release(self, key: Key, offset: int, reply: str, due: float) -> None:
        """Remember a released event until it is delivered again or long due."""
        released = self._released.setdefault(key, {})
        released[offset] = (reply, due)
        self._prune(released)

    def waiting(self, key: Key) -> int:
        """Events released with a delay by this instance that are not due yet."""
        released = self._released.get(key)
        if not released:
            return 0
        self._prune(released)
        now = self._clock()
        return sum(1 for _, due in released.values() if due > now)

    def _prune(self, released: dict[int, tuple[str, float]]) -> None:
        # Oldest first, as they were released: stop at the first that is kept, so that
        # each release costs a step or two, not a pass over all of them.
        horizon = self._clock() - KEEP_RELEASED
        while released:
            offset, (_, due) = next(iter(released.items()))
            if due >= horizon:
                return
            del released[offset]

    def drop(self, key: Key) -> None:
        """Forget everything about a group (unsubscribed, replaced by a seek, deleted)."""
        for lease in self._held.pop(key, {}).values():
            if lease.timer is not None:
                lease.timer.cancel()
        self._released.pop(key, None)

    def drop_topic(self, topic: str) -> None:
        for key in [k for k in (*self._held, *self._released) if k[0] == topic]:
            self.drop(key)

    def close(self) -> None:
        for key in list(self._held):
            self.drop(key)
        self._released.clear()

    def _arm(self, key: Key, offset: int, lease: Lease) -> None:
        delay = max(lease.until - self._clock(), 0.0)
        lease.timer = asyncio.get_running_loop().call_later(delay, self._ran_out, key, offset)

    def _ran_out(self, key: Key, offset: int) -> None:
        """The caller's lease ended: keep the reply a while for a late ``ack``, and
        release the event unless JetStream is about to deliver it again by itself."""
        lease = self._held.get(key, {}).pop(offset, None)
        if lease is None:
            return
        self.release(key, offset, lease.reply, self._clock())
        if lease.until + MARGIN < lease.server_until:
            self._expire(key[0], key[1], offset, lease.reply)
