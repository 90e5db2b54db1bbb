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
``application/problem+json`` on the native one.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Receive, Scope, Send

from triggerfish.api.invoke import NativeInvoke, function_of
from triggerfish.api.lambda_.errors import error_reply, lambda_error
from triggerfish.api.lambda_.invoke import INVOKE_PATH, Invocations
from triggerfish.api.problems import problem_reply
from triggerfish.api.publish import NativePublish, topic_of
from triggerfish.api.raw import Disconnected, RawRequest, Reply
from triggerfish.errors import TriggerfishError

if TYPE_CHECKING:
    from triggerfish.node import Node

log = logging.getLogger("triggerfish.api")

LAMBDA_PREFIX = "/2015-03-31/functions/"


class FastPath:
    def __init__(self, app: ASGIApp, *, node: Node) -> None:
        self.app = app
        self.lambda_invoke = Invocations(node)
        self.native_invoke = NativeInvoke(node)
        self.native_publish = NativePublish(node)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            if path.startswith(LAMBDA_PREFIX):
                match = INVOKE_PATH.match(path)
                if match is not None:
                    await self._lambda(match.group(1), scope, receive, send)
                    return
            else:
                name = function_of(path)
                if name is not None and await self._native(name, scope, receive, send):
                    return
                topic = topic_of(path) if name is None else None
                if topic is not None and await self._publish(topic, scope, receive, send):
                    return
        await self.app(scope, receive, send)

    async def _lambda(self, name: str, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            reply = await self.lambda_invoke.handle(name, RawRequest(scope, receive))
        except Disconnected:
            return
        except Exception as exc:
            reply = error_reply(lambda_error(exc))
        await reply.send(send)

    async def _native(self, name: str, scope: Scope, receive: Receive, send: Send) -> bool:
        """False when the route should serve the request instead."""
        request = RawRequest(scope, receive)
        params = self.native_invoke.accepts(request)
        if params is None:
            return False
        await _answer(self.native_invoke.handle(name, request, params), send, f"invoking {name!r}")
        return True

    async def _publish(self, topic: str, scope: Scope, receive: Receive, send: Send) -> bool:
        """False when the route should serve the request instead."""
        request = RawRequest(scope, receive)
        if not self.native_publish.accepts(request):
            return False
        await _answer(self.native_publish.handle(topic, request), send, f"publishing to {topic!r}")
        return True


async def _answer(work: Awaitable[Reply], send: Send, what: str) -> None:
    """Send the reply of ``work``, or its error as a problem document."""
    try:
        reply = await work
    except Disconnected:
        return
    except TriggerfishError as exc:
        reply = problem_reply(exc)
    except Exception:
        log.exception("%s failed", what)
        reply = Reply(500, b"Internal Server Error", media_type=b"text/plain; charset=utf-8")
    await reply.send(send)
