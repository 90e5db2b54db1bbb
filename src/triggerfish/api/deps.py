"""Request dependencies: the node, its application layer (``control_of``: every change
and every read of the store or the bus goes through it), and the API token with the
scope a route needs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from fastapi import Request

from triggerfish.errors import AuthError

if TYPE_CHECKING:
    from triggerfish.control import Control
    from triggerfish.node import Node


def node_of(request: Request) -> Node:
    node: Node = request.app.state.node
    return node


def control_of(request: Request) -> Control:
    return node_of(request).control


def require(scope: str) -> Callable[[Request], Awaitable[None]]:
    """A dependency that admits requests whose Bearer token has ``scope`` (or admin)."""

    async def check(request: Request) -> None:
        header = request.headers.get("authorization", "")
        if not header:
            raise AuthError(
                "missing API token: send 'Authorization: Bearer <token>' (the admin token "
                "is in the data directory's admin.token file)"
            )
        kind, _, token = header.partition(" ")
        if kind.lower() != "bearer" or not token.strip():
            raise AuthError("the Authorization header must be 'Bearer <token>'")
        node_of(request).tokens.authorize(token.strip(), scope)

    return check
