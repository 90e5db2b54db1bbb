"""Plain ASGI for the hot paths (the invoke operations and event ingest), without a
framework's request and response objects: a ``RawRequest`` reads the headers once into
a dict and the body with a size limit; a ``Reply`` is written as two ASGI messages (or
as one HTTP/1.1 response by ``api.protocol``);
``path_part`` and ``token_allows`` decide whether a request is one the path serves.

Both also serve the FastAPI routes that document the same operations
(``RawRequest(request.scope, request.receive)``, ``reply.response()``), so there is one
implementation of each operation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from triggerfish.errors import TriggerfishError
from triggerfish.security.tokens import bearer_token

if TYPE_CHECKING:
    from triggerfish.security.registry import TokenRegistry

JSON = b"application/json"


def path_part(path: str, prefix: str, suffix: str) -> str | None:
    """The one path segment between ``prefix`` and ``suffix`` (``/v1/topics/{t}/events``),
    or None when ``path`` is not of that form."""
    if path.startswith(prefix) and path.endswith(suffix):
        part = path[len(prefix) : -len(suffix)]
        if part and "/" not in part:
            return part
    return None


def token_allows(tokens: TokenRegistry, request: RawRequest, scope: str, resource: str) -> bool:
    """True when the request's Bearer token may use ``scope`` on ``resource``; False
    leaves the request to its route, which explains a refusal in full."""
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        return False
    try:
        tokens.authorize(token, scope, resource)
    except TriggerfishError:
        return False
    return True


class Disconnected(Exception):
    """The client went away before it sent the whole body: there is no one to answer."""


class RawRequest:
    """The parts of an HTTP request the hot paths read. ``headers`` maps lowercase
    names to values (repeated headers joined with ``,``)."""

    __slots__ = ("_query", "headers", "method", "receive", "scope")

    def __init__(self, scope: Scope, receive: Receive) -> None:
        self.scope = scope
        self.receive = receive
        self.method: str = scope["method"]
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            name = raw_name.decode("latin-1").lower()
            value = raw_value.decode("latin-1")
            headers[name] = f"{headers[name]},{value}" if name in headers else value
        self.headers = headers
        self._query: dict[str, str] | None = None

    @property
    def query(self) -> dict[str, str]:
        """The query parameters; the last value of a repeated one wins."""
        if self._query is None:
            text = self.scope.get("query_string", b"").decode("latin-1")
            self._query = dict(parse_qsl(text, keep_blank_values=True)) if text else {}
        return self._query

    async def body(self, limit: int, too_large: Callable[[], Exception]) -> bytes:
        """The whole body; ``too_large()`` is raised as soon as it passes ``limit``
        bytes (at once when ``Content-Length`` says so)."""
        declared = self.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise too_large()
        message = await self.receive()
        if message["type"] != "http.request":
            raise Disconnected
        body: bytes = message.get("body", b"")
        if not message.get("more_body", False):  # the usual case: one message
            if len(body) > limit:
                raise too_large()
            return body
        chunks = [body]
        size = len(body)
        while True:
            message = await self.receive()
            if message["type"] != "http.request":
                raise Disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise too_large()
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


class Reply:
    """A complete response: status, body, and headers as (lowercase name, value).
    ``close``: end the connection after it (a refused body that is left unread)."""

    __slots__ = ("body", "close", "headers", "media_type", "status")

    def __init__(
        self,
        status: int,
        body: bytes = b"",
        headers: list[tuple[bytes, bytes]] | None = None,
        *,
        media_type: bytes | None = JSON,
        close: bool = False,
    ) -> None:
        self.status = status
        self.body = body
        self.headers = headers if headers is not None else []
        self.media_type = media_type
        self.close = close

    def header(self, name: str, value: str) -> None:
        self.headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))

    def all_headers(self) -> list[tuple[bytes, bytes]]:
        """``headers`` with the length and type of the body."""
        headers = self.headers
        if self.status != 204 and self.status >= 200:
            headers = [*headers, (b"content-length", str(len(self.body)).encode("ascii"))]
            if self.media_type is not None:
                headers.append((b"content-type", self.media_type))
        return headers

    async def send(self, send: Send) -> None:
        headers = self.all_headers()
        if self.close:  # the server closes the connection once it sent the reply
            headers = [*headers, (b"connection", b"close")]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})

    def response(self) -> Response:
        """The same reply as a Starlette response, for a FastAPI route."""
        response = Response(
            self.body,
            status_code=self.status,
            media_type=None if self.media_type is None else self.media_type.decode("latin-1"),
        )
        response.raw_headers.extend(self.headers)
        if self.close:
            response.raw_headers.append((b"connection", b"close"))
        return response
