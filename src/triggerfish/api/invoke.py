"""The synchronous native invoke, ``POST /v1/functions/{name}/invoke``, in plain ASGI.

The FastAPI route in ``api.functions`` documents the operation, checks its parameters
and serves what the fast path leaves to it (``mode=async``, a refused token, a
parameter it would reject); both answer through ``invoke_sync``, so the two paths give
the same reply. ``NativeInvoke.accepts`` decides from the headers and the query alone,
before the body is read, so that a request it declines still has its body for the route.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson

from triggerfish.api.raw import RawRequest, Reply, path_part, token_allows
from triggerfish.errors import PayloadTooLargeError

if TYPE_CHECKING:
    from triggerfish.node import Node

LOG_TAIL_BYTES = 4096
PREFIX = "/v1/functions/"
SUFFIX = "/invoke"
# What the route's ``log: bool`` accepts (pydantic's lax booleans).
_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})


@dataclass(frozen=True, slots=True)
class Params:
    qualifier: str = "live"
    log: bool = False


DEFAULT = Params()


def function_of(path: str) -> str | None:
    """The function name of an invoke path, or None for any other path."""
    return path_part(path, PREFIX, SUFFIX)


async def invoke_sync(
    node: Node,
    name: str,
    payload: bytes,
    params: Params,
    trace: Mapping[str, str] | None = None,
) -> Reply:
    """Run ``name`` now: 200 with the handler's result, or with its error document and
    ``X-Triggerfish-Function-Error: Unhandled`` (as Lambda answers a function error).
    ``trace``: the request's headers (their ``traceparent``, when tracing is on)."""
    result = await node.invoker.invoke(
        name, payload or b"{}", qualifier=params.qualifier, trace=trace
    )
    reply = Reply(
        200,
        headers=[
            (b"x-triggerfish-invocation-id", result.request_id.encode()),
            (b"x-triggerfish-status", result.status.encode()),
            (b"x-triggerfish-executed-version", result.version.encode()),
            (b"x-triggerfish-duration-ms", f"{result.duration_ms:.3f}".encode()),
        ],
    )
    if result.status == "ok":
        reply.body = result.result or b"null"
    else:
        reply.header("X-Triggerfish-Function-Error", "Unhandled")
        reply.body = orjson.dumps(result.error_document())
    if params.log:
        tail = result.logs.encode()[-LOG_TAIL_BYTES:]
        reply.header("X-Triggerfish-Log-Result", base64.b64encode(tail).decode())
    return reply


class NativeInvoke:
    """Serves the synchronous native invoke on ``node`` without the router."""

    def __init__(self, node: Node) -> None:
        self._node = node

    def accepts(self, request: RawRequest, name: str) -> Params | None:
        """The parameters when this path serves the request: a synchronous call with
        a token that may invoke the function. None leaves it to the route, which
        explains refusals."""
        params = self._params(request)
        if params is None:
            return None
        resource = f"{name}:{params.qualifier or 'live'}"
        if not token_allows(self._node.tokens, request, "invoke", resource):
            return None
        return params

    def _params(self, request: RawRequest) -> Params | None:
        if not request.scope.get("query_string"):
            return DEFAULT
        query = request.query
        if query.get("mode", "sync") != "sync":
            return None
        log = query.get("log", "false").lower()
        if log not in _TRUE and log not in _FALSE:
            return None
        return Params(qualifier=query.get("qualifier", "live"), log=log in _TRUE)

    async def handle(self, name: str, request: RawRequest, params: Params) -> Reply:
        limit = self._node.settings.sync_payload_limit
        payload = await request.body(limit, lambda: _too_large(limit))
        return await invoke_sync(self._node, name, payload, params, request.headers)


def _too_large(limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"synchronous invocation payload is over the limit of {limit:,} bytes"
    )
