"""Request dependencies: the node, its application layer (``control_of``: every change
and every read of the store or the bus goes through it), and who sent a request with
the permission a route needs (``require``).

A request to ``/v1`` proves who sent it with an API token (``Authorization: Bearer
tfk_...``) or with an access key's AWS Signature Version 4 (as botocore's ``SigV4Auth``
signs any request: the path encoded twice, the body's SHA-256), so a function can use
the key in its environment here too. Either way it becomes a ``Principal``, whose
permissions ``require`` checks against the resource the route names: a topic, a
function with its qualifier, or ``*`` for a route that names neither.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from fastapi import Request
from starlette.types import Scope

from triggerfish.errors import AuthError
from triggerfish.security.permissions import ANY, Principal
from triggerfish.security.sigv4 import UNSIGNED, Credentials, S3AuthError, verify

if TYPE_CHECKING:
    from triggerfish.control import Control
    from triggerfish.node import Node

Resource = Callable[[Request], str]

MISSING = (
    "missing credentials: send 'Authorization: Bearer <token>' (the admin token is in "
    "the data directory's admin.token file), or sign the request with an access key "
    "(AWS Signature Version 4)"
)


def node_of(request: Request) -> Node:
    node: Node = request.app.state.node
    return node


def control_of(request: Request) -> Control:
    return node_of(request).control


def path(name: str) -> Resource:
    """The resource a route names in its path parameter ``name``."""

    def resource(request: Request) -> str:
        return str(request.path_params[name])

    return resource


def invoked(request: Request) -> str:
    """``function:qualifier`` of an invoke route (``qualifier`` in the query, or live)."""
    qualifier = request.query_params.get("qualifier") or "live"
    return f"{request.path_params['name']}:{qualifier}"


def is_signed(scope: Scope) -> bool:
    """True when a request carries an AWS Signature Version 4 (header or query)."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            return bool(value.startswith(b"AWS4-HMAC-SHA256 "))
    return b"X-Amz-Algorithm=" in scope.get("query_string", b"")


def signed_headers(scope: Scope) -> dict[str, str]:
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


async def verify_signed(
    node: Node, scope: Scope, body: bytes, *, headers: Mapping[str, str] | None = None
) -> Credentials:
    """The checked signature of a request signed with an access key; ``S3AuthError``
    when the signature, the body or the key does not check out."""
    body_sha256 = hashlib.sha256(body).hexdigest()
    query_text = scope.get("query_string", b"").decode("latin-1")
    credentials = await verify(
        scope["method"],
        _raw_path(scope),
        parse_qsl(query_text, keep_blank_values=True),
        headers if headers is not None else signed_headers(scope),
        node.access_keys.secret,
        body_sha256=body_sha256,
    )
    declared = credentials.payload_hash
    if declared != UNSIGNED and not hmac.compare_digest(declared, body_sha256):
        raise S3AuthError(
            "SignatureDoesNotMatch",
            "the body does not match the x-amz-content-sha256 the request was signed with",
        )
    return credentials


async def principal_of(request: Request) -> Principal:
    """Who sent ``request``: its token's or its access key's principal; ``AuthError``
    saying what is missing or wrong otherwise."""
    node = node_of(request)
    if is_signed(request.scope):
        try:
            body = await request.body()
        except RuntimeError:  # a form the framework has read already
            raise AuthError(
                "this request's body cannot be signed over: sign it with the header "
                "x-amz-content-sha256: UNSIGNED-PAYLOAD, or use an API token"
            ) from None
        credentials = await verify_signed(node, request.scope, body)
        return node.access_keys.principal(credentials.access_key)
    header = request.headers.get("authorization", "")
    if not header:
        raise AuthError(MISSING)
    kind, _, token = header.partition(" ")
    if kind.lower() != "bearer" or not token.strip():
        raise AuthError("the Authorization header must be 'Bearer <token>' or AWS4-HMAC-SHA256")
    return await node.tokens.principal_async(token.strip())


def require(
    action: str, resource: Resource | None = None
) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency that admits requests whose credential may ``action`` on the
    resource ``resource`` reads from the request (everything when None), and gives
    the route the principal."""

    async def check(request: Request) -> Principal:
        principal = await principal_of(request)
        principal.require(action, ANY if resource is None else resource(request))
        return principal

    return check
