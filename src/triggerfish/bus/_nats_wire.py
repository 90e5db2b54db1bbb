"""The NATS bus's traffic with the server below the JetStream management API.

Three things the NATS client offers only one at a time, or not at all:

- ``Wire.request_all`` sends many requests in the order given and awaits every answer
  together, with their replies gathered on one wildcard subscription. Publishing a batch
  of events this way keeps their offsets in the order of the batch (each publish is on
  the wire before the next), yet costs one round trip for the batch, not one per event.
  Acknowledging, releasing and extending go the same way: each is a request that
  JetStream answers once it has applied it, so the call returns only then.
- ``Wire.pull`` asks a durable consumer for messages with a pull request of its own, on an
  inbox of its own, so that concurrent fetches never take each other's messages.
  Without ``wait`` the request is answered at once (``no_wait``); with it, JetStream
  holds the request open up to ``wait`` seconds for the first message. A fetch cancelled
  before its request was answered hands the inbox to a background task that releases
  whatever JetStream still delivers to it, so nothing stays leased to nobody.
- ``delivered`` reads the offset, delivery count and publish time JetStream puts in the
  reply subject of every message it delivers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription

log = logging.getLogger(__name__)

NAK = b"-NAK"
ACK = b"+ACK"
IN_PROGRESS = b"+WPI"
TERM = b"+TERM"

Request = tuple[str, bytes, dict[str, str] | None]  # subject, payload, headers


#: Seconds between checks, while a pull waits, that the connection was not renewed.
RECONNECT_CHECK = 1.0


@dataclass(frozen=True, slots=True)
class Delivered:
    offset: int  # the stream sequence
    attempt: int  # how many times JetStream has delivered it
    published_at: float  # when JetStream stored it, unix seconds


class GroupGone(ConnectionError):
    """A consumer did not answer as one does: deleted, or being replaced (a seek)."""


def status(msg: Msg) -> str | None:
    """The status of a control message from the server (``404``, ``408``, ...), or None
    for a message that carries data."""
    headers = msg.headers
    if not headers or msg.data:
        return None
    return headers.get("Status")


def delivered(reply: str) -> Delivered:
    """Parse ``$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time
    ns>.<pending>``, or its longer form with a domain and an account hash first."""
    tokens = reply.split(".")
    base = 2 if len(tokens) == 9 else 4
    return Delivered(
        offset=int(tokens[base + 3]),
        attempt=int(tokens[base + 2]),
        published_at=int(tokens[base + 5]) / 1e9,
    )


def nak_payload(delay: float) -> bytes:
    if delay <= 0:
        return NAK
    return NAK + b" " + json.dumps({"delay": int(delay * 1e9)}).encode()


class Wire:
    """Ordered requests, private pull requests and the background work they leave."""

    def __init__(self, nc: Client, *, timeout: float, api_prefix: str = "$JS.API") -> None:
        self._nc = nc
        self._timeout = timeout
        self._api = api_prefix
        self._inbox = ""
        self._sub: Subscription | None = None
        self._waiting: dict[str, asyncio.Future[Msg]] = {}
        self._next = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._inbox = self._nc.new_inbox()
        self._sub = await self._nc.subscribe(f"{self._inbox}.*", cb=self._answered)

    async def close(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        waiting, self._waiting = self._waiting, {}
        for future in waiting.values():
            future.cancel()

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` in the background until done or until ``close``."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answered(self, msg: Msg) -> None:
        future = self._waiting.pop(msg.subject.rpartition(".")[2], None)
        if future is not None and not future.done():
            future.set_result(msg)

    async def request_all(self, requests: Sequence[Request]) -> list[Msg]:
        """Send ``requests`` in order, then wait for all their answers; TimeoutError when
        one is missing after the bus's timeout."""
        loop = asyncio.get_running_loop()
        tokens: list[str] = []
        futures: list[asyncio.Future[Msg]] = []
        try:
            for subject, payload, headers in requests:
                self._next += 1
                token = str(self._next)
                future: asyncio.Future[Msg] = loop.create_future()
                self._waiting[token] = future
                tokens.append(token)
                futures.append(future)
                await self._nc.publish(
                    subject, payload, reply=f"{self._inbox}.{token}", headers=headers
                )
            if futures:
                _, pending = await asyncio.wait(futures, timeout=self._timeout)
                if pending:
                    raise TimeoutError(
                        f"{len(pending)} of {len(futures)} request(s) got no answer "
                        f"within {self._timeout:g} s"
                    )
            return [future.result() for future in futures]
        finally:
            for token in tokens:
                self._waiting.pop(token, None)

    async def pull(
        self, stream: str, consumer: str, *, batch: int, wait: float | None
    ) -> list[Msg]:
        """Up to ``batch`` messages of a durable consumer; ``wait=None`` answers at once,
        a number waits up to that long for the first. GroupGone when the consumer does
        not answer as one."""
        if not self._nc.is_connected:
            # The client would keep the request and send it on reconnection, to be
            # answered to an inbox nobody reads any more: what it were handed would
            # wait for its lease to end.
            raise ConnectionError("not connected to the NATS server")
        inbox = self._nc.new_inbox()
        sub = await self._nc.subscribe(inbox)
        request: dict[str, object] = {"batch": batch}
        if wait is None:
            request["no_wait"] = True
        else:
            request["expires"] = max(int(wait * 1e9), 1_000_000)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (wait or 0.0) + self._timeout
        out: list[Msg] = []
        handed_over = False
        # A server that restarted forgot this request: after a reconnection the wait
        # ends, and the caller's next fetch asks the server again.
        reconnects = self._nc.stats["reconnects"]
        try:
            await self._nc.publish(
                f"{self._api}.CONSUMER.MSG.NEXT.{stream}.{consumer}",
                json.dumps(request).encode(),
                reply=inbox,
            )
            while len(out) < batch:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    if out:
                        break
                    handed_over = self._abandon(sub, wait)  # it may still be alive
                    raise GroupGone(f"no answer from consumer {consumer} of stream {stream}")
                try:
                    msg = await sub.next_msg(timeout=min(remaining, RECONNECT_CHECK))
                except asyncio.CancelledError:
                    handed_over = self._abandon(sub, wait)
                    raise
                except TimeoutError:
                    if self._nc.stats["reconnects"] != reconnects:
                        # The request may have been sent only on reconnection (the
                        # client buffers while disconnected), and then lives on the
                        # server for its whole wait: what it is handed must go back at
                        # once, not when its lease runs out.
                        handed_over = self._abandon(sub, wait)
                        break
                    continue  # the deadline check above decides
                code = status(msg)
                if code is None:
                    out.append(msg)
                elif code in ("404", "408"):
                    break  # nothing (more) to deliver, or the request expired
                elif code == "100":
                    continue  # an idle heartbeat
                elif out:
                    break
                else:
                    description = (msg.headers or {}).get("Description", "")
                    if code == "503" or (code == "409" and "Deleted" in description):
                        raise GroupGone(f"consumer {consumer} of stream {stream}: {description}")
                    raise ConnectionError(f"JetStream refused a pull request: {code} {description}")
            return out
        finally:
            if not handed_over:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()

    def _abandon(self, sub: Subscription, wait: float | None) -> bool:
        """Hand a pull request this side stops waiting for to ``_release_late``, for as
        long as the server may still answer it."""
        deadline = asyncio.get_running_loop().time() + (wait or 0.0) + self._timeout
        self.spawn(self._release_late(sub, deadline))
        return True

    async def _release_late(self, sub: Subscription, deadline: float) -> None:
        """Release what JetStream delivers to an abandoned pull request until it expires."""
        loop = asyncio.get_running_loop()
        try:
            while (remaining := deadline - loop.time()) > 0:
                try:
                    msg = await sub.next_msg(timeout=remaining)
                except TimeoutError:
                    return
                code = status(msg)
                if code is None and msg.reply:
                    await self._nc.publish(msg.reply, NAK)
                elif code is not None and code != "100":
                    return
        except Exception:
            log.debug("releasing messages of an abandoned pull request failed", exc_info=True)
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
