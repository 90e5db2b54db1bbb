"""The producer APIs on the server's own port: EventBridge ``PutEvents`` and SQS's
``SendMessage``, ``SendMessageBatch`` and ``GetQueueUrl``, for AWS SDKs and the AWS CLI
with ``endpoint_url`` pointing at Triggerfish.

Both are AWS JSON protocols: ``POST /`` with the operation in ``X-Amz-Target``
(``AWSEvents.PutEvents``, ``AmazonSQS.SendMessage``). ``Producers`` wraps the S3
middleware and takes exactly those requests, so every other request, signed ones for S3
included, goes on as before. A request is signed with AWS Signature Version 4 by an
access key Triggerfish issued, for the service it calls (``events`` or ``sqs``), or
carries an API token as ``Authorization: Bearer``; what it may send is its ``publish``
permissions'.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from triggerfish.api.deps import verify_signed
from triggerfish.api.producers import eventbridge, sqs
from triggerfish.api.producers.errors import AMZ_JSON, AwsError, aws_error, error_reply
from triggerfish.api.raw import Disconnected, RawRequest, Reply
from triggerfish.config import MB
from triggerfish.security.permissions import Principal

if TYPE_CHECKING:
    from triggerfish.node import Node

log = logging.getLogger("triggerfish.producers")

#: The most of a request body read: over the services' own limits (256 KB of entries or
#: messages), so that those are answered as the services answer them.
BODY_LIMIT = 1 * MB
SERVICES = {"AWSEvents": "events", "AmazonSQS": "sqs"}
MEDIA_TYPES = {"events": AMZ_JSON, "sqs": b"application/x-amz-json-1.0"}
NAMESPACES = {"events": None, "sqs": "com.amazonaws.sqs"}
MISSING = (
    "Missing Authentication Token: sign the request with AWS Signature Version 4 using an "
    "access key from `triggerfish keys create`, or send 'Authorization: Bearer <token>'"
)


def target_of(scope: Scope) -> tuple[str, str] | None:
    """The service (``events``, ``sqs``) and the operation a request calls; None for a
    request of another API."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return None
    for name, value in scope["headers"]:
        if name == b"x-amz-target":
            prefix, _, operation = value.decode("latin-1").partition(".")
            service = SERVICES.get(prefix)
            return (service, operation) if service is not None and operation else None
    return None


class Producers:
    """ASGI middleware answering the producer APIs on ``node``, passing the rest on."""

    def __init__(self, app: ASGIApp, *, node: Node) -> None:
        self.app = app
        self.node = node

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        target = target_of(scope)
        if target is None:
            await self.app(scope, receive, send)
            return
        service, operation = target
        try:
            reply = await self.answer(service, operation, RawRequest(scope, receive))
        except Disconnected:
            return
        except Exception as exc:
            reply = error_reply(aws_error(exc), namespace=NAMESPACES[service])
        await reply.send(send)

    async def answer(self, service: str, operation: str, request: RawRequest) -> Reply:
        body = await request.body(BODY_LIMIT, _too_large)
        who, sender = await self.principal(service, request, body)
        try:
            document = orjson.loads(body) if body else {}
        except orjson.JSONDecodeError:
            document = None
        if not isinstance(document, dict):
            raise AwsError(400, "SerializationException", "the body is not a JSON object")
        result = await self.operation(service, operation, request, who, sender, document)
        reply = Reply(200, orjson.dumps(result), media_type=MEDIA_TYPES[service])
        return reply

    async def operation(
        self,
        service: str,
        operation: str,
        request: RawRequest,
        who: Principal,
        sender: str,
        document: dict[str, Any],
    ) -> dict[str, Any]:
        node = self.node
        if service == "events" and operation == "PutEvents":
            return await eventbridge.put_events(node, who, document)
        if service == "sqs" and operation == "SendMessage":
            return await sqs.send_message(node, who, sender, document)
        if service == "sqs" and operation == "SendMessageBatch":
            return await sqs.send_message_batch(node, who, sender, document)
        if service == "sqs" and operation == "GetQueueUrl":
            return await sqs.get_queue_url(node, who, _base_url(request), document)
        raise AwsError(
            400,
            "UnknownOperationException",
            f"Triggerfish does not serve {operation} of {service}: it serves EventBridge's "
            "PutEvents and SQS's SendMessage, SendMessageBatch and GetQueueUrl",
        )

    async def principal(
        self, service: str, request: RawRequest, body: bytes
    ) -> tuple[Principal, str]:
        """Who sent the request, and the sender id SQS shows for them."""
        authorization = request.headers.get("authorization", "")
        kind, _, token = authorization.partition(" ")
        if kind.lower() == "bearer" and token.strip():
            who = await self.node.tokens.principal_async(token.strip())
            return who, who.name or who.id
        if not authorization.startswith("AWS4-HMAC-SHA256 "):
            raise AwsError(403, "MissingAuthenticationTokenException", MISSING)
        credentials = await verify_signed(self.node, request.scope, body, headers=request.headers)
        if credentials.service != service:
            raise AwsError(
                403,
                "InvalidSignatureException",
                f"Credential should be scoped to correct service: '{service}'.",
            )
        return self.node.access_keys.principal(credentials.access_key), credentials.access_key


def _base_url(request: RawRequest) -> str:
    scheme = request.scope.get("scheme", "http")
    host = request.headers.get("host")
    if not host:
        server = request.scope.get("server") or ("127.0.0.1", 80)
        host = f"{server[0]}:{server[1]}"
    return f"{scheme}://{host}"


def _too_large() -> AwsError:
    return AwsError(413, "RequestEntityTooLarge", f"the request body is over {BODY_LIMIT} bytes")
