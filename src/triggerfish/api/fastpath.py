"""The hot path in front of the application: synchronous invokes and event ingest, in
plain ASGI.

``FastPath`` wraps the whole FastAPI application (outside its middleware) and answers
Lambda's ``Invoke`` (``POST /2015-03-31/functions/{name}/invocations``, see
``lambda_.invoke``) and the synchronous native invoke (``POST /v1/functions/{name}/
invoke``, see ``api.invoke``) and event ingest (``POST /v1/topics/{topic}/events``, see
``api.publish``) itself; it passes every other request, and the lifespan,
to the application. Those paths are never S3 requests (``s3.app.CONTROL_PREFIXES``),
so answering them first changes no routing. The application keeps a route for each
operation, which documents it in the OpenAPI schema and serves it when the application
runs without this front.

Errors keep each API's shape: Lambda's error documents on the Lambda path,
``application/problem+json`` on the native one. The head limits (431) and the body
limits (413) are those of ``api.limits``, checked before the token or the body.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Receive, Scope, Send

from triggerfish.api.invoke import NativeInvoke, function_of
from triggerfish.api.lambda_.errors import error_reply, lambda_error
from triggerfish.api.lambda_.invoke import INVOKE_PATH, Invocations
from triggerfish.api.limits import HeadLimits, leaves_long_body
from triggerfish.api.problems import problem_reply
from triggerfish.api.publish import NativePublish, topic_of
from triggerfish.api.raw import Disconnected, RawRequest, Reply
from triggerfish.errors import TriggerfishError

if TYPE_CHECKING:
    from triggerfish.node import Node

log = logging.getLogger("triggerfish.api")

LAMBDA_PREFIX = "/2015-03-31/functions/"
#: An operation of the fast path (``"lambda"``, ``"invoke"`` or ``"publish"``) and the
#: function or topic its path names.
Route = tuple[str, str]


class FastPath:
    def __init__(self, app: ASGIApp, *, node: Node) -> None:
        self.app = app
        self.lambda_invoke = Invocations(node)
        self.native_invoke = NativeInvoke(node)
        self.native_publish = NativePublish(node)
        settings = node.settings
        self.heads = HeadLimits(size=settings.header_size_limit, count=settings.header_count_limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.route(scope) if scope["type"] == "http" else None
        if route is not None:
            try:
                reply = await self.answer(scope, receive, route)
            except Disconnected:
                return
            if reply is not None:
                await reply.send(send)
                return
        await self.app(scope, receive, send)

    def route(self, scope: Scope) -> Route | None:
        """What ``answer`` would serve ``scope`` (an HTTP request) as: the operation and
        the function or topic it names; None for a request of the application's."""
        if scope["method"] != "POST":
            return None
        path: str = scope["path"]
        if path.startswith(LAMBDA_PREFIX):
            match = INVOKE_PATH.match(path)
            return None if match is None else ("lambda", match.group(1))
        name = function_of(path)
        if name is not None:
            return ("invoke", name)
        topic = topic_of(path)
        return None if topic is None else ("publish", topic)

    async def answer(self, scope: Scope, receive: Receive, route: Route) -> Reply | None:
        """The reply to a request of ``route``, errors included; None when the
        application should serve it instead (its body then still unread). Raises
        ``Disconnected`` when the client left before it sent the whole body."""
        refusal = self.heads.refusal(scope)
        if refusal is not None:
            return refusal
        reply = await self._reply(scope, receive, route)
        if reply is not None and reply.status == 413:
            # The rest of the body is not read: a long one ends the connection.
            reply.close = leaves_long_body(scope)
        return reply

    async def _reply(self, scope: Scope, receive: Receive, route: Route) -> Reply | None:
        operation, name = route
        request = RawRequest(scope, receive)
        if operation == "lambda":
            try:
                return await self.lambda_invoke.handle(name, request)
            except Disconnected:
                raise
            except Exception as exc:
                return error_reply(lambda_error(exc))
        if operation == "invoke":
            params = self.native_invoke.accepts(request, name)
            if params is None:
                return None
            return await _answer(
                self.native_invoke.handle(name, request, params), f"invoking {name!r}"
            )
        if not self.native_publish.accepts(request, name):
            return None
        return await _answer(self.native_publish.handle(name, request), f"publishing to {name!r}")


async def _answer(work: Awaitable[Reply], what: str) -> Reply:
    """The reply of ``work``, or its error as a problem document."""
    try:
        return await work
    except Disconnected:
        raise
    except TriggerfishError as exc:
        return problem_reply(exc)
    except Exception:
        log.exception("%s failed", what)
        return Reply(500, b"Internal Server Error", media_type=b"text/plain; charset=utf-8")
