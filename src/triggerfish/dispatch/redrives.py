"""What waits in a dead-letter topic, and the dead letters redriven one at a time.

``redrive all`` reads a dead-letter topic with the consumer group ``_redrive`` and
acknowledges each event it sent back, in order: what waits is what lies after that
group's cursor. An event redriven alone lies ahead of the cursor, among events still
waiting, and a bus cannot say that it is done: a group's cursor moves only past what it
leased, and NATS JetStream cannot list the messages a consumer acknowledged out of
order. So the store records it (a document of kind ``redriven`` named
``<topic>:<offset>``, holding the event's id): the listing leaves recorded events out,
and ``redrive all`` acknowledges them without sending them again and forgets the record.
A record matches only the event of that id at that offset, so one left behind (a topic
deleted and created again) hides nothing.
"""

from __future__ import annotations

import time

from triggerfish.bus.base import Bus, StoredEvent
from triggerfish.store.documents import Documents

REDRIVE_GROUP = "_redrive"
KIND = "redriven"
PAGE = 1000


class Redrives:
    def __init__(self, bus: Bus, documents: Documents) -> None:
        self._bus = bus
        self._documents = documents

    async def cursor(self, topic: str) -> tuple[int, int | None]:
        """The ``_redrive`` group's (cursor, backlog) on ``topic``; (0, None) without one."""
        for group in await self._bus.groups(topic):
            if group.group == REDRIVE_GROUP:
                return group.cursor, group.backlog
        return 0, None

    async def marked(self, topic: str) -> dict[int, str]:
        """Offsets of ``topic`` redriven alone, with their events' ids."""
        out: dict[int, str] = {}
        for name, body in (await self._documents.list(KIND)).items():
            marked_topic, _, offset = name.rpartition(":")
            if marked_topic == topic:
                out[int(offset)] = str(body["event"])
        return out

    async def mark(self, stored: StoredEvent) -> None:
        body = {"event": stored.event.id, "at": time.time()}
        await self._documents.put(KIND, f"{stored.topic}:{stored.offset}", body)

    async def forget(self, topic: str, offsets: list[int]) -> None:
        for offset in offsets:
            await self._documents.delete(KIND, f"{topic}:{offset}")

    async def pending(self, topic: str, *, limit: int) -> tuple[int, list[StoredEvent]]:
        """How many events wait to be redriven, and the first ``limit`` of them."""
        cursor, backlog = await self.cursor(topic)
        ahead = {o: e for o, e in (await self.marked(topic)).items() if o > cursor}
        items = await self._bus.read(topic, after=cursor, limit=limit + len(ahead))
        waiting = [s for s in items if ahead.get(s.offset) != s.event.id]
        done = len(items) - len(waiting)
        # Records beyond what was read still count as done when their event is there.
        for offset, event_id in ahead.items():
            if items and offset <= items[-1].offset:
                continue
            found = await self._bus.read(topic, after=offset - 1, limit=1)
            done += bool(found and found[0].offset == offset and found[0].event.id == event_id)
        if backlog is None:
            return len(waiting), waiting[:limit]
        return max(backlog - done, 0), waiting[:limit]

    async def find(self, topic: str, event_id: str) -> StoredEvent | None:
        """The first event of that id still waiting in ``topic``."""
        cursor, _ = await self.cursor(topic)
        marked = await self.marked(topic)
        while page := await self._bus.read(topic, after=cursor, limit=PAGE):
            for stored in page:
                if stored.event.id == event_id and marked.get(stored.offset) != event_id:
                    return stored
            cursor = page[-1].offset
        return None
