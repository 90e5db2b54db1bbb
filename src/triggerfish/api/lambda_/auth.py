"""Who may call the Lambda API: a request signed with AWS Signature Version 4 by an
access key Triggerfish issued (``triggerfish keys create``), as AWS SDKs and the AWS
CLI sign, or one carrying an API token as ``Authorization: Bearer <token>`` (for curl
and scripts), whose scope the route names.

A signature covers the body: the SHA-256 of the body read is what the signature is
checked against, and a declared ``x-amz-content-sha256`` must match it. A valid key
may invoke and look up every function.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.types import Scope

from triggerfish.api.lambda_.errors import LambdaError
from triggerfish.api.raw import RawRequest
from triggerfish.security.sigv4 import UNSIGNED, verify

if TYPE_CHECKING:
    from triggerfish.node import Node

SERVICE = "lambda"

MISSING = (
    "Missing Authentication Token: sign the request with AWS Signature Version 4 using an "
    "access key from `triggerfish keys create`, or send 'Authorization: Bearer <token>'"
)


def _headers(scope: Scope) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    return headers


def _raw_path(scope: Scope) -> str:
    # Clients of services other than S3 sign the path as it was sent (still encoded),
    # encoded once more; ``verify`` does that second encoding.
    raw: bytes = scope.get("raw_path") or scope["path"].encode("utf-8")
    return raw.split(b"?", 1)[0].decode("latin-1")


async def authenticate(node: Node, request: Request | RawRequest, body: bytes, scope: str) -> str:
    """The access key id or token id that made the request; raises ``LambdaError``
    (or an ``AuthError`` / ``S3AuthError`` the error mapping names)."""
    authorization = request.headers.get("authorization", "")
    kind, _, token = authorization.partition(" ")
    if kind.lower() == "bearer" and token.strip():
        return node.tokens.authorize(token.strip(), scope).id
    query_text = request.scope.get("query_string", b"").decode("latin-1")
    signed_query = "X-Amz-Algorithm=" in query_text
    if not authorization.startswith("AWS4-HMAC-SHA256 ") and not signed_query:
        raise LambdaError(403, "MissingAuthenticationTokenException", MISSING, kind=None)
    body_sha256 = hashlib.sha256(body).hexdigest()
    headers = request.headers if isinstance(request, RawRequest) else _headers(request.scope)
    credentials = await verify(
        request.method,
        _raw_path(request.scope),
        parse_qsl(query_text, keep_blank_values=True),
        headers,
        node.access_keys.secret,
        body_sha256=body_sha256,
    )
    if credentials.service != SERVICE:
        raise LambdaError(
            403,
            "InvalidSignatureException",
            f"Credential should be scoped to correct service: '{SERVICE}'.",
            kind=None,
        )
    declared = credentials.payload_hash
    if declared != UNSIGNED and not hmac.compare_digest(declared, body_sha256):
        raise LambdaError(
            403,
            "InvalidSignatureException",
            "the body does not match the x-amz-content-sha256 the request was signed with",
            kind=None,
        )
    return credentials.access_key
