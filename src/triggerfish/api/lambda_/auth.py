"""Who may call the Lambda API: a request signed with AWS Signature Version 4 by an
access key Triggerfish issued (``triggerfish keys create``), as AWS SDKs and the AWS
CLI sign, or one carrying an API token as ``Authorization: Bearer <token>`` (for curl
and scripts).

A signature covers the body: the SHA-256 of the body read is what the signature is
checked against, and a declared ``x-amz-content-sha256`` must match it. What the
caller may then do is its permissions': ``Invoke`` needs ``invoke`` on the function and
qualifier, every other operation (``GetFunction`` and the listings show environments;
the alias operations move traffic) ``deploy`` on the function. A function's own key
has only what its manifest grants.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request

from triggerfish.api.deps import signed_headers, verify_signed
from triggerfish.api.lambda_.errors import LambdaError
from triggerfish.api.raw import RawRequest
from triggerfish.security.permissions import ANY, Principal

if TYPE_CHECKING:
    from triggerfish.node import Node

SERVICE = "lambda"

MISSING = (
    "Missing Authentication Token: sign the request with AWS Signature Version 4 using an "
    "access key from `triggerfish keys create`, or send 'Authorization: Bearer <token>'"
)


async def principal(node: Node, request: Request | RawRequest, body: bytes) -> Principal:
    """Who made the request; raises ``LambdaError`` (or an ``AuthError`` /
    ``S3AuthError`` the error mapping names)."""
    authorization = request.headers.get("authorization", "")
    kind, _, token = authorization.partition(" ")
    if kind.lower() == "bearer" and token.strip():
        return await node.tokens.principal_async(token.strip())
    query_text = request.scope.get("query_string", b"").decode("latin-1")
    signed_query = "X-Amz-Algorithm=" in query_text
    if not authorization.startswith("AWS4-HMAC-SHA256 ") and not signed_query:
        raise LambdaError(403, "MissingAuthenticationTokenException", MISSING, kind=None)
    headers = request.headers if isinstance(request, RawRequest) else signed_headers(request.scope)
    credentials = await verify_signed(node, request.scope, body, headers=headers)
    if credentials.service != SERVICE:
        raise LambdaError(
            403,
            "InvalidSignatureException",
            f"Credential should be scoped to correct service: '{SERVICE}'.",
            kind=None,
        )
    return node.access_keys.principal(credentials.access_key)


async def authenticate(
    node: Node, request: Request | RawRequest, body: bytes, action: str, resource: str = ANY
) -> Principal:
    """Who made the request, once it is known that they may ``action`` on
    ``resource`` (a function, ``function:qualifier`` for ``invoke``); raises
    ``PermissionDeniedError`` (``AccessDeniedException``) naming what is missing."""
    who = await principal(node, request, body)
    who.require(action, resource)
    return who
