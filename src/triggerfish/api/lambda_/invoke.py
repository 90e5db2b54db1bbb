"""Lambda's ``Invoke``: ``POST /2015-03-31/functions/{name}/invocations``.

``RequestResponse`` (the default) answers 200 with the function's result, or with its
error document and ``X-Amz-Function-Error: Unhandled`` when it failed; ``Event`` answers
202 once the payload is durable on the bus (it then runs with the function's async
policy, on its ``live`` alias); ``DryRun`` answers 204 when the function and qualifier
exist and the caller may invoke. ``X-Amz-Executed-Version`` carries the version number
(``$LATEST`` when that was asked for); ``X-Amz-Log-Type: Tail`` adds the last 4 KB of
the log, base64-encoded, as ``X-Amz-Log-Result``. Errors are Lambda's (see ``errors``).

``X-Amz-Client-Context`` (base64 JSON, at most 3,583 bytes) reaches the handler as
``context.client_context`` (``.custom``, ``.env``, ``.client`` in Python).

``api.fastpath`` serves this operation in front of the whole application: an invoke is
the hot path, and plain ASGI spends a fraction of the time that the framework's
middleware, router and dependency machinery would.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from triggerfish.api.lambda_.auth import principal
from triggerfish.api.lambda_.errors import LambdaError, invalid_parameter
from triggerfish.api.lambda_.shapes import LATEST, qualifier_or_live, split_name
from triggerfish.api.raw import RawRequest, Reply
from triggerfish.security.permissions import INVOKE

if TYPE_CHECKING:
    from triggerfish.node import Node

LOG_TAIL_BYTES = 4096
#: Lambda's limit on the ``X-Amz-Client-Context`` header (base64 text).
CLIENT_CONTEXT_BYTES = 3583
INVOCATION_TYPES = ("RequestResponse", "Event", "DryRun")
INVOKE_PATH = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations$")


def client_context(header: str | None) -> Mapping[str, Any] | None:
    """The caller's client context: the ``X-Amz-Client-Context`` header is a JSON
    object (``client``, ``custom``, ``env``), base64-encoded, as AWS SDKs send it."""
    if not header:
        return None
    if len(header) > CLIENT_CONTEXT_BYTES:
        raise LambdaError(
            400,
            "InvalidRequestContentException",
            f"X-Amz-Client-Context is {len(header)} bytes; the limit is "
            f"{CLIENT_CONTEXT_BYTES} bytes of base64",
        )
    try:
        fields = orjson.loads(base64.b64decode(header, validate=True))
    except (binascii.Error, ValueError):
        fields = None
    if not isinstance(fields, dict):
        raise LambdaError(
            400,
            "InvalidRequestContentException",
            "X-Amz-Client-Context must be a base64-encoded JSON object, such as "
            '{"custom": {...}, "env": {...}, "client": {...}}',
        )
    return fields


class Invocations:
    """Runs Lambda ``Invoke`` requests on ``node``."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._control = node.control
        self._numbers: dict[tuple[str, str], int] = {}
        self._generation = node.control.generation

    async def version_number(self, function: str, version: str) -> int:
        # Version ids are content digests; their numbers change only with a redeploy
        # after a delete, which moves the generation on.
        control = self._control
        if self._generation != control.generation:
            self._numbers.clear()
            self._generation = control.generation
        key = (function, version)
        number = self._numbers.get(key)
        if number is None:
            number = (await control.functions.version(function, version)).number
            self._numbers[key] = number
        return number

    async def handle(self, name: str, request: RawRequest) -> Reply:
        node = self._node
        limit = node.settings.sync_payload_limit
        body = await request.body(limit, lambda: _too_large(limit))
        who = await principal(node, request, body)
        headers = request.headers
        function, qualifier = split_name(name, request.query.get("Qualifier"))
        who.require(INVOKE, f"{function}:{qualifier_or_live(qualifier)}")
        kind = headers.get("x-amz-invocation-type", "RequestResponse")
        log_type = headers.get("x-amz-log-type", "None")
        if kind not in INVOCATION_TYPES:
            raise invalid_parameter(
                f"X-Amz-Invocation-Type {kind!r} is not one of {', '.join(INVOCATION_TYPES)}"
            )
        if log_type not in ("None", "Tail"):
            raise invalid_parameter(f"X-Amz-Log-Type {log_type!r} is not None or Tail")
        context = client_context(headers.get("x-amz-client-context"))
        target = qualifier_or_live(qualifier)
        payload = body or b"{}"
        if kind == "DryRun":
            await self._control.specs.resolve(function, target)
            return Reply(204, media_type=None)
        if kind == "Event":
            node.disk.admit()  # no new event while the disk is low (observe/disk.py)
            stored = await node.invoker.invoke_async(
                function, payload, qualifier=target, trace=headers
            )
            return Reply(202, headers=[(b"x-amzn-requestid", stored.id.encode())], media_type=None)
        result = await node.invoker.invoke(
            function, payload, qualifier=target, client_context=context, trace=headers
        )
        if target == LATEST:
            executed = LATEST
        else:
            executed = str(await self.version_number(function, result.version))
        reply = Reply(
            200,
            headers=[
                (b"x-amz-executed-version", executed.encode()),
                (b"x-amzn-requestid", result.request_id.encode()),
            ],
        )
        if result.status == "ok":
            reply.body = result.result or b"null"
        else:
            reply.header("X-Amz-Function-Error", "Unhandled")
            reply.body = orjson.dumps(result.error_document())
        if log_type == "Tail":
            tail = result.logs.encode("utf-8")[-LOG_TAIL_BYTES:]
            reply.header("X-Amz-Log-Result", base64.b64encode(tail).decode("ascii"))
        return reply


def _too_large(limit: int) -> LambdaError:
    return LambdaError(
        413,
        "RequestTooLargeException",
        f"Request must be smaller than {limit} bytes for the Invoke operation",
    )
