"""JetStream pull requests on a private inbox, for the ``jetstream`` source.

A pull consumer hands out messages on request: a request ``{"batch": N, "expires":
ns}`` published to ``$JS.API.CONSUMER.MSG.NEXT.<stream>.<durable>`` with a reply
inbox makes the server send up to N messages to that inbox, as they become
available, until N were sent or the request expires (then a ``408`` status message
ends it). ``Puller`` keeps one such request open while fewer than a batch of
messages wait to be committed, and collects what arrives in one queue; ``take`` gives
what is there, up to a batch, without a wait per message.

Every message carries its ack subject as reply (``$JS.ACK.<stream>.<consumer>.
<delivered>.<stream seq>.<consumer seq>.<time>.<pending>``, with a domain and an
account hash before the stream in newer servers); publishing ``+ACK`` there
acknowledges it, ``+TERM`` tells the server never to deliver it again.

A request may end without an answer (the connection broke, or the server lost it):
when nothing arrives for twice its expiry and a few seconds more, ``take`` sends a new
one. Requests are never given up while open, so no message reaches the inbox unseen;
one that did would be delivered again after the consumer's ``ack_wait``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from triggerfish.errors import AdapterError

ACK = b"+ACK"
TERM = b"+TERM"
_CLOSED = object()
_STATUS = "Status"
_DESCRIPTION = "Description"
_HEARTBEAT = "100"
#: Status codes that end a request and call for the next: no messages (404), the
#: request expired (408), or a passing conflict (409, "Leadership Change" ...).
_REQUEST_ENDED = frozenset({"404", "408", "409"})
#: 409 descriptions that will not pass by asking again.
_FATAL_CONFLICTS = ("consumer deleted", "consumer is push based", "exceeded maxrequest")
CONFLICT_PAUSE = 0.1  # seconds before a new request after a passing conflict


def ack_metadata(reply: str) -> tuple[str, str, int]:
    """``(stream, stream sequence, times delivered)`` from a message's ack subject."""
    tokens = reply.split(".")
    if len(tokens) == 9:  # $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>
        return tokens[2], tokens[5], int(tokens[4])
    if len(tokens) >= 11 and tokens[0] == "$JS" and tokens[1] == "ACK":
        # $JS.ACK.<domain>.<account hash>.<stream>.<consumer>.<delivered>.<sseq>...
        return tokens[4], tokens[7], int(tokens[6])
    raise AdapterError(f"JetStream sent a message whose ack subject is not one: {reply!r}")


class Puller:
    """One open pull request at a time on ``subject``, its messages in a queue."""

    def __init__(self, subject: str, *, batch: int, expires: float) -> None:
        self.subject = subject
        self.batch = batch
        self.expires = expires
        self._request = json.dumps(
            {"batch": batch, "expires": int(expires * 1_000_000_000)}
        ).encode()
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._nc: Any = None
        self._inbox = ""
        self._open = False  # a request is out and has not ended
        self._left = 0  # messages the open request may still bring
        self._retry: asyncio.TimerHandle | None = None
        self._asking: asyncio.Future[None] | None = None

    async def start(self, nc: Any) -> None:
        """Subscribe to a new inbox and send the first request."""
        self._nc = nc
        self._inbox = nc.new_inbox()
        await nc.subscribe(self._inbox, cb=self._received)
        await nc.flush()
        await self._ask()

    async def closed(self) -> None:
        """The connection's ``closed_cb``: ``take`` raises once the queue is drained."""
        self._queue.put_nowait(_CLOSED)

    async def take(self) -> list[Any]:
        """Wait for a message, then take the others already there, up to a batch."""
        first = await self._wait()
        items = [first]
        queue = self._queue
        while len(items) < self.batch and not queue.empty():
            item = queue.get_nowait()
            if item is _CLOSED or isinstance(item, Exception):
                queue.put_nowait(item)  # raised by the next take, after this batch
                break
            items.append(item)
        await self._ask()
        return items

    async def _wait(self) -> Any:
        patience = 2 * self.expires + 5.0
        while True:
            try:
                item = await asyncio.wait_for(self._queue.get(), timeout=patience)
            except TimeoutError:
                if self._nc.is_closed:
                    raise ConnectionError("the NATS connection closed") from None
                self._open = False  # the request got no answer: ask again
                await self._ask()
                continue
            if item is _CLOSED:
                raise ConnectionError("the NATS connection closed")
            if isinstance(item, Exception):
                raise item
            return item

    async def _ask(self) -> None:
        """Send a request unless one is open or a batch already waits."""
        if self._open or self._queue.qsize() >= self.batch or self._nc.is_closed:
            return
        self._open = True
        self._left = self.batch
        await self._nc.publish(self.subject, self._request, reply=self._inbox)

    async def _received(self, msg: Any) -> None:
        status = msg.headers.get(_STATUS) if msg.headers else None
        if status is None:
            self._queue.put_nowait(msg)
            self._left -= 1
            if self._left > 0:
                return
        elif status == _HEARTBEAT:
            return
        elif status not in _REQUEST_ENDED or (status == "409" and _fatal(msg)):
            self._queue.put_nowait(_failure(self.subject, msg))
        elif status == "409":
            # A passing conflict (too many waiting pulls, a leader change): ask again
            # after a pause rather than at once, which would meet the same answer.
            self._retry = asyncio.get_running_loop().call_later(CONFLICT_PAUSE, self._reopen)
            return
        self._open = False
        await self._ask()

    def _reopen(self) -> None:
        self._open = False
        self._asking = asyncio.ensure_future(self._ask_quietly())

    async def _ask_quietly(self) -> None:
        # A broken connection shows through ``closed``; nothing to add here.
        with contextlib.suppress(Exception):
            await self._ask()


def _fatal(msg: Any) -> bool:
    description = str(msg.headers.get(_DESCRIPTION, "")).lower()
    return any(conflict in description for conflict in _FATAL_CONFLICTS)


def _failure(subject: str, msg: Any) -> AdapterError:
    status = msg.headers.get(_STATUS, "")
    description = msg.headers.get(_DESCRIPTION, "")
    if status == "503":
        description = "no responders: is JetStream enabled, and does the stream exist?"
    return AdapterError(f"JetStream answered {status} {description} to a pull on {subject}")
