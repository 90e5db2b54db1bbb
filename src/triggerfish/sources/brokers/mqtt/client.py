"""An MQTT 3.1.1 and 5 client written for batches: the MQTT source's and sink's.

One ``MqttClient`` is one connection: ``connect``, ``subscribe``, then ``take`` the
messages that arrived (every one since the last call, up to a limit) and
``acknowledge`` them once their events are committed. The client never acknowledges a
message by itself: that is what lets the source promise at least once. ``publish``
(the sink's) returns once the broker has the message (PUBACK, or PUBREC then PUBCOMP).

Why its own client: a general MQTT client decodes and answers each packet with a
round of Python calls and callbacks, which made it the limit of the MQTT source. This
one parses every complete PUBLISH of a socket read in one loop
(``wire.read_packets``) and answers a batch with one write.

What it does beside that:

- QoS 1: PUBACK for each message in ``acknowledge``, in the order they arrived (as the
  specification asks).
- QoS 2: PUBREC in ``acknowledge``, that is after the commit, not on arrival. A
  message whose events were not committed was not received as far as the broker
  knows, and it sends it again to the same session after a reconnect or a crash. Once
  PUBREC went out, the packet id waits in ``Session.released`` for the broker's PUBREL
  (answered with PUBCOMP); a PUBLISH with that id in between is the same message again
  and is answered without being handed on. ``Session`` outlives a connection, so this
  holds across reconnects of one process.
- Keep alive: a PINGREQ when nothing was sent for half the keep-alive interval, and the
  connection is dropped when nothing came from the broker for 1.5 times it (an MQTT 5
  broker's Server Keep Alive replaces the client's).
- Flow: MQTT 5's Receive Maximum bounds the QoS 1 and 2 messages in flight; with
  QoS 0 the client stops reading from the socket while ``high_water`` messages wait
  to be taken, and TCP holds the broker back.
- TLS for ``mqtts://``, user name and password from the URL.

Anything that goes wrong (a refused connect or subscription, a broken packet, a
broker that disconnects or stops answering) fails the client: ``take`` raises
``AdapterError`` with the reason in words, and the source connects again.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import unquote, urlsplit

from triggerfish.errors import AdapterError
from triggerfish.sources.brokers.mqtt import wire
from triggerfish.sources.brokers.mqtt.wire import Publish
from triggerfish.tasks import cancel_task


@dataclass(frozen=True, slots=True)
class Address:
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None


def address_of(url: str) -> Address:
    """Where an ``mqtt://``, ``mqtts://`` or ``tcp://`` URL points, with its user and
    password (percent-decoded)."""
    parts = urlsplit(url)
    tls = parts.scheme == "mqtts"
    return Address(
        parts.hostname or "localhost",
        parts.port or (8883 if tls else 1883),
        tls,
        unquote(parts.username) if parts.username else None,
        unquote(parts.password) if parts.password else None,
    )


class PublishRefused(AdapterError):
    """The broker answered a publish with a failure (MQTT 5), or this client may not
    send it at its QoS (``code`` 0x9B, QoS not supported)."""

    #: The reason codes that say the message itself is wrong: sending it again as it
    #: is cannot help (topic name invalid, packet too large, payload format invalid,
    #: retain not supported, QoS not supported).
    FINAL = frozenset({0x90, 0x95, 0x99, 0x9A, 0x9B})

    def __init__(self, message: str, code: int = 0x9B) -> None:
        super().__init__(message)
        self.code = code


@dataclass(slots=True)
class Session:
    """Client state that lasts as long as the broker's session, across connections:
    the QoS 2 packet ids acknowledged with PUBREC and not yet released."""

    released: set[int] = field(default_factory=set)


# The packets that answer one of the client's own: CONNACK (by packet id 0), SUBACK,
# UNSUBACK, and those of a publish.
ANSWERS = frozenset(
    {wire.CONNACK, wire.SUBACK, wire.UNSUBACK, wire.PUBACK, wire.PUBREC, wire.PUBCOMP}
)


class MqttClient(asyncio.Protocol):
    def __init__(
        self,
        address: Address,
        client_id: str,
        *,
        protocol: int = wire.V5,
        keepalive: int = 30,
        clean_start: bool = False,
        session_expiry: int = 0,
        receive_maximum: int | None = None,
        session: Session | None = None,
        tls_context: ssl.SSLContext | None = None,
        timeout: float = 10.0,
        high_water: int = 4096,
    ) -> None:
        self.address = address
        self.client_id = client_id
        self.protocol = protocol
        self.keepalive = keepalive
        self.clean_start = clean_start
        self.session_expiry = session_expiry
        self.receive_maximum = receive_maximum
        self.session = session if session is not None else Session()
        self.tls_context = tls_context
        self.timeout = timeout
        self.high_water = high_water
        self.session_present = False
        self.maximum_qos = 2  # what the broker takes from this client (MQTT 5 CONNACK)
        #: QoS 1 and 2 publishes the broker takes unacknowledged at once (its MQTT 5
        #: Receive Maximum; 3.1.1 brokers announce none).
        self.send_maximum = 65535
        self._socket: socket.socket | None = None  # set for TCP_QUICKACK, where there is one
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._inbox: deque[Publish] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._replies: dict[int, asyncio.Future[bytes]] = {}  # packet id (0: CONNACK)
        self._error: Exception | None = None
        self._paused = False
        self._next_id = 0
        self._pinger: asyncio.Task[None] | None = None
        self._closed: asyncio.Future[None] | None = None
        self._last_sent = self._last_received = time.monotonic()

    # -- the client's side ----------------------------------------------------------

    async def connect(self) -> None:
        """Open the connection and wait for the broker's CONNACK; raise AdapterError
        when it cannot connect or refuses, with the reason."""
        loop = asyncio.get_running_loop()
        self._closed = loop.create_future()
        address = self.address
        context = self.tls_context
        if address.tls and context is None:
            context = ssl.create_default_context()
        where = f"{address.host}:{address.port}"
        try:
            await asyncio.wait_for(
                loop.create_connection(
                    lambda: self,
                    address.host,
                    address.port,
                    ssl=context,
                    server_hostname=address.host if context else None,
                ),
                self.timeout,
            )
        except TimeoutError:
            raise AdapterError(f"no connection to the MQTT broker at {where} within "
                               f"{self.timeout:g} s") from None  # fmt: skip
        except OSError as exc:
            raise AdapterError(f"cannot connect to the MQTT broker at {where}: {exc}") from exc
        if self.clean_start:
            self.session.released.clear()
        connect_properties: dict[str, Any] = {}
        if self.protocol == wire.V5:
            if self.session_expiry:
                connect_properties["session_expiry"] = self.session_expiry
            if self.receive_maximum:
                connect_properties["receive_maximum"] = self.receive_maximum
        self._write(
            wire.connect(
                self.client_id,
                protocol=self.protocol,
                keepalive=self.keepalive,
                clean_start=self.clean_start,
                username=address.username,
                password=address.password,
                connect_properties=connect_properties,
            )
        )
        body = await self._reply(0, "CONNACK")
        if len(body) < 2:
            self._fail(wire.MalformedPacket("a CONNACK shorter than 2 bytes"))
            raise self._failure()
        code = body[1]
        values: dict[str, Any] = {}
        if self.protocol == wire.V5 and len(body) > 2:
            values = self._parsed(lambda: wire.read_properties(body, 2, len(body))[0])
        if code:
            detail = values.get("reason_string")
            error = AdapterError(
                f"the MQTT broker at {where} refused the connection: "
                f"{wire.reason(code, self.protocol)}" + (f": {detail}" if detail else "")
            )
            self._fail(error)
            raise error
        self.session_present = bool(body[0] & 1)
        if not self.session_present:
            # A new session: no QoS 2 message of an earlier one can come back.
            self.session.released.clear()
        self.maximum_qos = values.get("maximum_qos", 2)
        self.send_maximum = values.get("receive_maximum", 65535)
        keepalive = values.get("server_keepalive", self.keepalive)
        if keepalive:
            self._pinger = asyncio.create_task(self._keep_alive(keepalive))

    async def subscribe(
        self, filters: Sequence[tuple[str, int]], retain_handling: int = 0
    ) -> list[int]:
        """Subscribe to (topic filter, maximum QoS) pairs; return the QoS the broker
        granted each (it may grant less than asked); raise AdapterError naming each
        filter the broker refused."""
        packet_id = self._packet_id()
        self._write(
            wire.subscribe(
                packet_id, list(filters), protocol=self.protocol, retain_handling=retain_handling
            )
        )
        body = await self._reply(packet_id, "SUBACK")
        at = 2
        detail = None
        if self.protocol == wire.V5:
            values, at = self._parsed(lambda: wire.read_properties(body, 2, len(body)))
            detail = values.get("reason_string")
        codes = body[at:]
        if len(codes) != len(filters):
            self._fail(wire.MalformedPacket(f"a SUBACK with {len(codes)} codes for "
                                            f"{len(filters)} filters"))  # fmt: skip
            raise self._failure()
        refused = [
            f"{topic!r} ({wire.reason(code) if self.protocol == wire.V5 else 'refused'})"
            for (topic, _), code in zip(filters, codes, strict=True)
            if code >= 0x80
        ]
        if refused:
            error = AdapterError(
                "the MQTT broker refused the subscription to " + ", ".join(refused)
                + (f": {detail}" if detail else "")
            )  # fmt: skip
            self._fail(error)
            raise error
        return list(codes)

    async def take(self, limit: int) -> list[Publish]:
        """Wait for a message, then return every one that arrived, up to ``limit``, in
        the order they came. Once the connection failed, what arrived before it is
        still handed out (with a clean session nothing would send it again), then
        this raises AdapterError."""
        inbox = self._inbox
        while not inbox:
            if self._error is not None:
                raise self._failure()
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        if len(inbox) <= limit:
            taken = list(inbox)
            inbox.clear()
        else:
            taken = [inbox.popleft() for _ in range(limit)]
        if self._paused and len(inbox) <= self.high_water // 2 and self._transport is not None:
            self._paused = False
            self._transport.resume_reading()
        return taken

    def acknowledge(self, messages: Sequence[Publish]) -> None:
        """Acknowledge ``messages`` (taken from this client), in one write: PUBACK for
        QoS 1, PUBREC for QoS 2. A closed connection acknowledges nothing: the broker
        sends those messages again to the session."""
        out = bytearray()
        released = self.session.released
        for message in messages:
            if message.qos == 1:
                out += wire.acknowledgement(wire.PUBACK, message.packet_id)
            elif message.qos == 2:
                out += wire.acknowledgement(wire.PUBREC, message.packet_id)
                released.add(message.packet_id)
        if out:
            self._write(bytes(out))

    async def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 0,
        retain: bool = False,
        properties: dict[str, Any] | None = None,
    ) -> None:
        """Publish one message and return once the broker has it: after PUBACK for
        QoS 1, PUBCOMP for QoS 2, the write for QoS 0. Raises AdapterError when the
        broker refuses it (MQTT 5 gives the reason) or the connection fails first.
        ``properties`` (MQTT 5) by the names of ``wire.PROPERTIES``."""
        if qos > self.maximum_qos:
            raise PublishRefused(
                f"the MQTT broker takes messages up to QoS {self.maximum_qos}, not {qos}: "
                f"set the sink's qos to {self.maximum_qos} or lower"
            )
        if self._error is not None:
            raise self._failure()
        packet_id = self._packet_id() if qos else 0
        self._write(
            wire.publish(
                topic,
                payload,
                qos=qos,
                packet_id=packet_id,
                retain=retain,
                protocol=self.protocol,
                publish_properties=properties,
            )
        )
        if not qos:
            return
        body = await self._reply(packet_id, "PUBACK" if qos == 1 else "PUBREC")
        self._check_delivery(body, "PUBACK" if qos == 1 else "PUBREC", topic)
        if qos == 2:
            self._write(wire.acknowledgement(wire.PUBREL, packet_id))
            body = await self._reply(packet_id, "PUBCOMP")
            self._check_delivery(body, "PUBCOMP", topic)

    def _check_delivery(self, body: bytes, what: str, topic: str) -> None:
        """Raise when an MQTT 5 PUBACK, PUBREC or PUBCOMP carries a failure code."""
        code = body[2] if len(body) > 2 else 0
        if code >= 0x80:
            raise PublishRefused(
                f"the MQTT broker refused the message to {topic!r} ({what}): {wire.reason(code)}",
                code,
            )

    async def close(self) -> None:
        """Disconnect (normally: an MQTT 5 broker keeps the session for its expiry).

        After DISCONNECT the client waits (up to ``timeout``) for the broker to close
        the connection, and closes its own side only then: a broker that sees the
        client's end of the stream together with its last acknowledgements may drop
        the connection before it reads them (Mosquitto under load does), and would
        send those messages again."""
        await cancel_task(self._pinger)
        transport = self._transport
        if transport is None or self._closed is None:
            return
        if not transport.is_closing():
            transport.write(wire.DISCONNECT_5 if self.protocol == wire.V5 else wire.DISCONNECT_311)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._closed), self.timeout)
        if not self._closed.done():
            transport.abort()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._closed), self.timeout)

    async def __aenter__(self) -> MqttClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- asyncio's side ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        raw = transport.get_extra_info("socket")
        if hasattr(socket, "TCP_QUICKACK") and raw is not None and raw.family != socket.AF_UNIX:
            self._socket = raw

    def data_received(self, data: bytes) -> None:
        if self._replies and self._socket is not None:
            # Awaiting acknowledgements: acknowledge the broker's segments at once. A
            # broker that sends small packets without TCP_NODELAY (Mosquitto's default)
            # holds each PUBACK until the one before is acknowledged, and the kernel's
            # delayed acknowledgement (up to 40 ms) then stalls publishes in flight.
            with contextlib.suppress(OSError):
                self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        buffer = self._buffer
        buffer += data
        self._last_received = time.monotonic()
        packets, used, broken = wire.read_packets(buffer, self.protocol)
        del buffer[:used]
        inbox = self._inbox
        released = self.session.released
        replies = bytearray()
        for item in packets:
            if type(item) is Publish:
                if item.qos == 2 and item.packet_id in released:
                    # Committed and acknowledged before: the broker did not see the PUBREC.
                    replies += wire.acknowledgement(wire.PUBREC, item.packet_id)
                else:
                    inbox.append(item)
            else:
                reply = self._control(*item)
                if reply:
                    replies += reply
        if replies:
            self._write(bytes(replies))
        if broken is not None:
            self._fail(broken)
        if inbox:
            waiter = self._waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
            if len(inbox) >= self.high_water and not self._paused and self._transport:
                self._paused = True
                self._transport.pause_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._error is None:
            self._error = AdapterError(
                "the MQTT broker closed the connection" + (f": {exc}" if exc else "")
            )
        self._transport = None
        for future in self._replies.values():
            if not future.done():
                future.set_exception(self._failure())
        self._replies.clear()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)
        if self._pinger is not None:
            self._pinger.cancel()

    # -- inside -----------------------------------------------------------------------

    def _control(self, kind: int, flags: int, body: bytes) -> bytes | None:
        """Handle a packet other than PUBLISH; returns what to answer."""
        if kind == wire.PUBREL:
            if len(body) < 2:
                self._fail(wire.MalformedPacket("a PUBREL without a packet identifier"))
                return None
            packet_id = body[0] << 8 | body[1]
            self.session.released.discard(packet_id)
            return wire.acknowledgement(wire.PUBCOMP, packet_id)
        if kind == wire.PINGRESP:
            return None
        if kind in ANSWERS:
            packet_id = 0
            if kind != wire.CONNACK:
                packet_id = body[0] << 8 | body[1] if len(body) > 1 else -1
            future = self._replies.pop(packet_id, None)
            if future is None or future.done():
                self._fail(wire.MalformedPacket(f"an unexpected packet of type {kind}"))
            else:
                future.set_result(body)
            return None
        if kind == wire.DISCONNECT and self.protocol == wire.V5:
            code = body[0] if body else 0
            detail = None
            if len(body) > 1:
                with contextlib.suppress(wire.MalformedPacket):
                    detail = wire.read_properties(body, 1, len(body))[0].get("reason_string")
            self._fail(AdapterError(
                f"the MQTT broker disconnected: {wire.reason(code)}"
                + (f": {detail}" if detail else "")
            ))  # fmt: skip
            return None
        self._fail(wire.MalformedPacket(f"a packet of type {kind}, which a broker does not send "
                                        "to a subscriber"))  # fmt: skip
        return None

    def _write(self, data: bytes) -> None:
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.write(data)
            self._last_sent = time.monotonic()

    def _fail(self, error: Exception) -> None:
        """Fail the client with ``error`` and drop the connection."""
        if self._error is None:
            self._error = error
        if self._transport is not None:
            self._transport.abort()

    def _failure(self) -> Exception:
        error = self._error or AdapterError("the MQTT connection is closed")
        return AdapterError(str(error)) if not isinstance(error, AdapterError) else error

    def _parsed(self, read: Any) -> Any:
        try:
            return read()
        except wire.MalformedPacket as exc:
            self._fail(exc)
            raise

    def _packet_id(self) -> int:
        self._next_id = self._next_id % 65535 + 1
        return self._next_id

    async def _reply(self, packet_id: int, what: str) -> bytes:
        if self._error is not None:
            raise self._failure()
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._replies[packet_id] = future
        try:
            return await asyncio.wait_for(future, self.timeout)
        except TimeoutError:
            self._fail(AdapterError(f"no {what} from the MQTT broker within {self.timeout:g} s"))
            raise self._failure() from None

    async def _keep_alive(self, keepalive: int) -> None:
        half = keepalive / 2
        while True:
            await asyncio.sleep(half)
            now = time.monotonic()
            if now - self._last_received > keepalive * 1.5:
                self._fail(AdapterError(
                    f"the MQTT broker sent nothing for {keepalive * 1.5:g} s (keep alive)"
                ))  # fmt: skip
                return
            if now - self._last_sent >= half:
                self._write(wire.PINGREQ_PACKET)
