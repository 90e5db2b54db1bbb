"""Ingress limits, enforced before the work: a request over one is refused before it is
authenticated or parsed, holding no more of it in memory than the limit.

- The head (request line and header fields) has at most ``header_size_limit`` bytes and
  ``header_count_limit`` fields, else 431. ``limit_heads`` has the HTTP protocol count
  the bytes of a head as they arrive and refuse one still incomplete past the size, so
  a 100 MB header is never held; ``HeadLimits.refusal`` checks a complete head exactly,
  in ``IngressLimits`` and on the fast path.
- Each route has a body limit (``BodyLimits.of``). ``IngressLimits`` refuses a
  ``Content-Length`` over it before the application runs, and counts a body's bytes as
  they stream in, refusing it the moment they pass the limit (the application then
  reads a disconnect). The fast path reads its bodies with the same limits
  (``RawRequest.body``). A refusal is 413 in the route's own error shape
  (problem+json, Lambda's error document, API Gateway's ``{"message"}`` for ``/fn``).
  The S3 API keeps S3's own limits and errors (``api.s3.request``).
- A body left unread (refused, or answered before it was read, as a route that checks
  credentials first does) is read and dropped by the server when it is at most
  ``DRAIN_LIMIT`` long, so the connection stays usable; a longer one, or one of
  unknown length, closes the connection with the answer instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from triggerfish.api.functions import MAX_CODE_BYTES
from triggerfish.api.invoke import function_of
from triggerfish.api.lambda_.errors import LambdaError, error_reply
from triggerfish.api.lambda_.invoke import INVOKE_PATH
from triggerfish.api.problems import PROBLEM, problem_reply
from triggerfish.api.publish import topic_of
from triggerfish.api.raw import Reply
from triggerfish.api.s3.app import wants_s3
from triggerfish.config import MB, Settings
from triggerfish.errors import PayloadTooLargeError
from triggerfish.events.http import body_too_large

log = logging.getLogger("triggerfish.api")

#: The body of a control call (topics, aliases, webhooks, brokers, keys ...): JSON of a
#: few kilobytes at most.
CONTROL_BODY_LIMIT = 1 * MB
#: A deploy: the code zip and its settings, as a multipart form.
DEPLOY_BODY_LIMIT = MAX_CODE_BYTES + 1 * MB
#: The most of an unread body the server reads and drops to keep a connection open.
DRAIN_LIMIT = 16 * MB
LAMBDA_PREFIX = "/2015-03-31/"
ROUTES_PREFIX = "/fn"

Shape = Literal["problem", "lambda", "gateway"]


def _problem(status: int, kind: str, detail: str) -> Reply:
    body = {
        "type": f"https://triggerfish.dev/problems/{kind}",
        "title": kind.replace("-", " "),
        "status": status,
        "detail": detail,
    }
    return Reply(status, orjson.dumps(body), media_type=PROBLEM.encode(), close=True)


class HeadLimits:
    """The limits on a request's line and header fields."""

    __slots__ = ("count", "size")

    def __init__(self, *, size: int, count: int) -> None:
        self.size = size
        self.count = count

    def refusal(self, scope: Scope) -> Reply | None:
        """The 431 for a request whose head is over a limit; None for any other.
        The size is the request line's and the header lines' (``name: value`` and
        the line end), as they came."""
        headers = scope["headers"]
        if len(headers) > self.count:
            return self.too_large(
                f"the request has {len(headers)} header fields; the limit is {self.count} "
                "(header_count_limit)"
            )
        size = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"") + 16
        for name, value in headers:
            size += len(name) + len(value) + 4
        if size > self.size:
            return self.too_large(
                f"the request line and headers are about {size} bytes; the limit is "
                f"{self.size} (header_size_limit)"
            )
        return None

    def too_large(self, why: str) -> Reply:
        return _problem(
            431,
            "header-fields-too-large",
            f"{why}: send fewer or smaller headers (large values belong in the body)",
        )


@dataclass(frozen=True, slots=True)
class BodyLimit:
    """The most bytes a route's body may have, and how the route says it is over."""

    size: int
    shape: Shape
    error: Callable[[int], Exception]  # the limit -> the error naming it

    def refusal(self, *, close: bool) -> Reply:
        """The 413 in the route's own shape; ``close``: end the connection with it."""
        if self.shape == "gateway":
            # As API Gateway answers, and as the route does for a payload it refuses.
            return Reply(413, b'{"message":"Request Entity Too Large"}', close=close)
        error = self.error(self.size)
        if isinstance(error, LambdaError):
            reply = error_reply(error)
        elif isinstance(error, PayloadTooLargeError):
            reply = problem_reply(error)
        else:  # pragma: no cover - every limit makes one of the two
            raise TypeError(f"no reply for {error!r}")
        reply.close = close
        return reply


def _too_large(what: str, setting: str) -> Callable[[int], Exception]:
    def error(limit: int) -> Exception:
        return PayloadTooLargeError(
            f"the request body is over the limit of {limit} bytes for {what} ({setting})"
        )

    return error


def _lambda_too_large(operation: str) -> Callable[[int], Exception]:
    def error(limit: int) -> Exception:
        return LambdaError(
            413,
            "RequestTooLargeException",
            f"Request must be smaller than {limit} bytes for {operation}",
        )

    return error


def invoke_too_large(limit: int, mode: str = "synchronous") -> PayloadTooLargeError:
    return PayloadTooLargeError(f"{mode} invocation payload is over the limit of {limit} bytes")


class BodyLimits:
    """The body limit of each route, from the node's settings."""

    def __init__(self, settings: Settings, *, domains: tuple[str, ...]) -> None:
        sync, events = settings.sync_payload_limit, settings.async_payload_limit
        self.domains = domains
        self.events = BodyLimit(events, "problem", body_too_large)
        self.webhook = BodyLimit(events, "problem", _too_large("a webhook", "async_payload_limit"))
        self.invoke = BodyLimit(sync, "problem", invoke_too_large)
        self.invoke_async = BodyLimit(
            events, "problem", lambda limit: invoke_too_large(limit, "asynchronous")
        )
        self.deploy = BodyLimit(
            DEPLOY_BODY_LIMIT, "problem", _too_large("a deploy", "a code zip of at most 250 MB")
        )
        self.control = BodyLimit(
            CONTROL_BODY_LIMIT, "problem", _too_large("this operation", "control calls")
        )
        self.routes = BodyLimit(sync, "gateway", _too_large("an HTTP route", "sync_payload_limit"))
        self.lambda_invoke = BodyLimit(sync, "lambda", _lambda_too_large("the Invoke operation"))
        self.lambda_control = BodyLimit(
            CONTROL_BODY_LIMIT, "lambda", _lambda_too_large("this operation")
        )

    def of(self, scope: Scope) -> BodyLimit | None:
        """The limit of the request ``scope`` (HTTP); None for an S3 request, whose
        limits are S3's (``api.s3.request``)."""
        path: str = scope["path"]
        method: str = scope["method"]
        if path.startswith("/v1/"):
            if method == "POST":
                if topic_of(path) is not None:
                    return self.events
                if function_of(path) is not None:
                    query: bytes = scope.get("query_string", b"")
                    return self.invoke_async if b"mode=async" in query else self.invoke
                if path.startswith("/v1/webhooks/"):
                    return self.webhook
            elif method == "PUT" and path.startswith("/v1/functions/") and path.count("/") == 3:
                return self.deploy
            return self.control
        if path == ROUTES_PREFIX or path.startswith(ROUTES_PREFIX + "/"):
            return self.routes
        if path.startswith(LAMBDA_PREFIX):
            if method == "POST" and INVOKE_PATH.match(path):
                return self.lambda_invoke
            return self.lambda_control
        if wants_s3(scope, self.domains):
            return None
        return self.control


def declared_body(scope: Scope) -> tuple[int | None, bool]:
    """The request's ``Content-Length`` (None when it gives none), and whether it has
    a body at all (a length above 0, or a ``Transfer-Encoding``)."""
    length: int | None = None
    chunked = False
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                length = None
        elif name == b"transfer-encoding":
            chunked = True
    return length, chunked or bool(length)


def _long(declared: int | None, has_body: bool) -> bool:
    return has_body and (declared is None or declared > DRAIN_LIMIT)


def leaves_long_body(scope: Scope) -> bool:
    """True when an answer that leaves the request's body unread should close the
    connection: the body is longer than ``DRAIN_LIMIT``, or of unknown length."""
    return _long(*declared_body(scope))


class IngressLimits:
    """Refuses a request over its head or body limits before ``app`` does any work
    on it (see the module docstring). Pure ASGI: it holds nothing of the body."""

    def __init__(self, app: ASGIApp, *, heads: HeadLimits, bodies: BodyLimits) -> None:
        self.app = app
        self.heads = heads
        self.bodies = bodies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self.heads.refusal(scope)
        if refusal is not None:
            await refusal.send(send)
            return
        limit = self.bodies.of(scope)
        if limit is None:
            await self.app(scope, receive, send)
            return
        declared, has_body = declared_body(scope)
        if declared is not None and declared > limit.size:
            await limit.refusal(close=declared > DRAIN_LIMIT).send(send)
            return
        guard = _BodyGuard(limit, receive, send, ended=not _long(declared, has_body))
        try:
            await self.app(scope, guard.receive, guard.send)
        except Exception:
            if not guard.refused:
                raise
            # The application read a disconnect in place of the rest of the body; the
            # client has its answer already.


class _BodyGuard:
    """``receive`` and ``send`` of one request whose body may be refused midway. An
    answer given before a long body was read (a 401 from a route that checks
    credentials first, say) closes the connection, so the server does not read on
    through the rest of a body no one wants. ``ended``: no such body is left."""

    __slots__ = ("_receive", "_send", "ended", "limit", "read", "refused", "started")

    def __init__(self, limit: BodyLimit, receive: Receive, send: Send, *, ended: bool) -> None:
        self.limit = limit
        self._receive = receive
        self._send = send
        self.ended = ended
        self.read = 0
        self.refused = False
        self.started = False

    async def receive(self) -> Message:
        if self.refused:
            return {"type": "http.disconnect"}
        message = await self._receive()
        if message["type"] == "http.request":
            self.read += len(message.get("body", b""))
            if self.read > self.limit.size:
                self.refused = True
                if not self.started:
                    self.started = True
                    # Past the limit of a body without a length: the rest is unknown.
                    await self.limit.refusal(close=True).send(self._send)
                return {"type": "http.disconnect"}
            self.ended = not message.get("more_body", False)
        return message

    async def send(self, message: Message) -> None:
        if self.refused:
            return  # the refusal was the answer
        if message["type"] == "http.response.start":
            self.started = True
            headers = list(message.get("headers", ()))
            if not self.ended and all(name.lower() != b"connection" for name, _ in headers):
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
        await self._send(message)


def limit_heads(protocol: type[Any] | str, *, size: int) -> type[Any] | str:
    """``protocol`` (``uvicorn.Config(http=...)``: a class of uvicorn's ``httptools``
    protocol, or its name) counting the bytes of each request head as they arrive: a
    head still incomplete past ``size`` bytes is answered 431 and its connection
    closed. Given ``"h11"``, it is returned as it is: uvicorn's
    ``h11_max_incomplete_event_size`` bounds its heads."""
    if protocol == "h11":
        return protocol
    if isinstance(protocol, str):
        try:
            from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
        except ImportError:  # pragma: no cover - no httptools on this platform
            return protocol
        base: type[Any] = HttpToolsProtocol
    else:
        base = protocol
    hooks = ("connection_made", "data_received", "on_headers_complete", "on_message_complete")
    if not all(hasattr(base, hook) for hook in hooks):  # pragma: no cover - another uvicorn
        log.warning("uvicorn's protocol is not one whose request heads can be limited")
        return protocol
    refusal = HeadLimits(size=size, count=0).too_large(
        f"the request line and headers are over {size} bytes (header_size_limit)"
    )

    class HeadLimitedProtocol(base):  # type: ignore[misc]
        # Bytes received since the current head began; a chunk that also holds the end
        # of a head is not counted (the exact check sees the whole head), so a head is
        # refused at most one read (256 KiB) past the limit.
        _head_bytes = 0
        _in_head = True

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._head_bytes = 0
            self._in_head = True

        def data_received(self, data: bytes) -> None:
            if self._in_head:
                self._head_bytes += len(data)
            super().data_received(data)
            if self._in_head and self._head_bytes > size and not self.transport.is_closing():
                self._refuse_head()

        def on_headers_complete(self) -> None:
            self._in_head = False
            self._head_bytes = 0
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._in_head = True

        def _refuse_head(self) -> None:
            lines = [b"HTTP/1.1 431 Request Header Fields Too Large\r\n"]
            for name, value in self.server_state.default_headers:
                lines += (name, b": ", value, b"\r\n")
            for name, value in refusal.all_headers():
                lines += (name, b": ", value, b"\r\n")
            lines += (b"connection: close\r\n\r\n", refusal.body)
            self.transport.write(b"".join(lines))
            self.transport.close()

    return HeadLimitedProtocol
