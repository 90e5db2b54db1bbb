"""Lambda's ``Invoke``: ``POST /2015-03-31/functions/{name}/invocations``.

``RequestResponse`` (the default) answers 200 with the function's result, or with its
error document and ``X-Amz-Function-Error: Unhandled`` when it failed; ``Event`` answers
202 once the payload is durable on the bus (it then runs with the function's async
policy, on its ``live`` alias); ``DryRun`` answers 204 when the function and qualifier
exist and the caller may invoke. ``X-Amz-Executed-Version`` carries the version number
(``$LATEST`` when that was asked for); ``X-Amz-Log-Type: Tail`` adds the last 4 KB of
the log, base64-encoded, as ``X-Amz-Log-Result``. Errors are Lambda's (see ``errors``).

``LambdaInvokeMiddleware`` serves this one operation in front of the application's
router: an invoke is the hot path, and a plain ASGI layer spends a fraction of the
time the router and its dependency machinery would.
"""

from __future__ import annotations

import base64
import re
from typing import TYPE_CHECKING

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from triggerfish.api.lambda_.auth import authenticate
from triggerfish.api.lambda_.errors import (
    LambdaError,
    error_response,
    invalid_parameter,
    lambda_error,
)
from triggerfish.api.lambda_.shapes import LATEST, qualifier_or_live, split_name

if TYPE_CHECKING:
    from triggerfish.node import Node

LOG_TAIL_BYTES = 4096
INVOCATION_TYPES = ("RequestResponse", "Event", "DryRun")
INVOKE_PATH = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations$")


async def read_body(request: Request, limit: int) -> bytes:
    """The body, or ``RequestTooLargeException`` as soon as it passes ``limit``."""
    too_large = LambdaError(
        413,
        "RequestTooLargeException",
        f"Request must be smaller than {limit} bytes for the Invoke operation",
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


class Invocations:
    """Runs Lambda ``Invoke`` requests on ``node``."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._numbers: dict[tuple[str, str], int] = {}
        self._generation = node.generation

    async def version_number(self, function: str, version: str) -> int:
        # Version ids are content digests; their numbers change only with a redeploy
        # after a delete, which moves the node's generation on.
        node = self._node
        if self._generation != node.generation:
            self._numbers.clear()
            self._generation = node.generation
        key = (function, version)
        number = self._numbers.get(key)
        if number is None:
            number = (await node.store.get_version(function, version)).number
            self._numbers[key] = number
        return number

    async def handle(self, name: str, request: Request) -> Response:
        node = self._node
        body = await read_body(request, node.settings.sync_payload_limit)
        await authenticate(node, request, body, "invoke")
        function, qualifier = split_name(name, request.query_params.get("Qualifier"))
        kind = request.headers.get("x-amz-invocation-type", "RequestResponse")
        log_type = request.headers.get("x-amz-log-type", "None")
        if kind not in INVOCATION_TYPES:
            raise invalid_parameter(
                f"X-Amz-Invocation-Type {kind!r} is not one of {', '.join(INVOCATION_TYPES)}"
            )
        if log_type not in ("None", "Tail"):
            raise invalid_parameter(f"X-Amz-Log-Type {log_type!r} is not None or Tail")
        target = qualifier_or_live(qualifier)
        payload = body or b"{}"
        if kind == "DryRun":
            await node.resolve(function, target)
            return Response(status_code=204)
        if kind == "Event":
            stored = await node.invoker.invoke_async(function, payload, qualifier=target)
            return Response(status_code=202, headers={"x-amzn-RequestId": stored.id})
        result = await node.invoker.invoke(function, payload, qualifier=target)
        if target == LATEST:
            executed = LATEST
        else:
            version = await node.version_of(function, target)
            executed = str(await self.version_number(function, version))
        headers = {"X-Amz-Executed-Version": executed, "x-amzn-RequestId": result.request_id}
        if result.status == "ok":
            out = result.result or b"null"
        else:
            headers["X-Amz-Function-Error"] = "Unhandled"
            out = orjson.dumps(result.error_document())
        if log_type == "Tail":
            tail = result.logs.encode("utf-8")[-LOG_TAIL_BYTES:]
            headers["X-Amz-Log-Result"] = base64.b64encode(tail).decode("ascii")
        return Response(out, media_type="application/json", headers=headers)


class LambdaInvokeMiddleware:
    """Answers ``POST /2015-03-31/functions/{name}/invocations`` before the router;
    passes every other request to ``app``."""

    def __init__(self, app: ASGIApp, *, node: Node) -> None:
        self.app = app
        self.invocations = Invocations(node)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            match = INVOKE_PATH.match(scope["path"])
            if match is not None:
                request = Request(scope, receive)
                try:
                    response = await self.invocations.handle(match.group(1), request)
                except Exception as exc:
                    response = error_response(lambda_error(exc))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
