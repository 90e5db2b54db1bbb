"""API tokens: ``/v1/tokens``.

Issuing or revoking a token needs ``admin`` (a token could otherwise grant more than
its holder has); listing needs ``read``. The token itself is in the answer to the
creation only. A token's scopes are permissions (``security.permissions``): a scope
with no resource of its own takes the ``topics``, ``functions`` or ``buckets`` given
for its kind (``{"scopes": ["publish"], "topics": ["orders"]}`` is
``publish:orders``). ``expires_in`` (seconds) or ``expires_at`` (Unix time) makes it
expire. Listings show when each token was last used (to within a minute).
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from triggerfish.api.bounds import Duration, UnixTime
from triggerfish.api.deps import require
from triggerfish.errors import ValidationError
from triggerfish.security.permissions import ADMIN, READ, Permission, with_resources
from triggerfish.security.registry import TokenRegistry
from triggerfish.security.tokens import TokenRecord


class GrantBody(BaseModel):
    """What a new credential may do, and for how long."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="", max_length=200, description="a label for people")
    scopes: list[str] = Field(
        default_factory=list,
        description="permissions: admin, read, deploy, invoke, publish, s3:read, s3:write, "
        "each optionally with ':resource' (publish:orders)",
    )
    topics: list[str] = Field(default_factory=list, description="topics for publish")
    functions: list[str] = Field(
        default_factory=list, description="functions (or function:qualifier) for invoke, deploy"
    )
    buckets: list[str] = Field(
        default_factory=list, description="buckets or bucket/key patterns for s3:read, s3:write"
    )
    expires_in: Duration | None = Field(default=None, description="seconds from now")
    expires_at: UnixTime | None = Field(default=None, description="a Unix time")

    def permissions(self) -> list[Permission]:
        return with_resources(
            self.scopes, topics=self.topics, functions=self.functions, buckets=self.buckets
        )

    def expiry(self) -> float | None:
        if self.expires_in is not None and self.expires_at is not None:
            raise ValidationError("give expires_in or expires_at, not both", field="expires_in")
        if self.expires_in is not None:
            return time.time() + self.expires_in
        return self.expires_at


def token_json(record: TokenRecord, last_used: float | None = None) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "scopes": list(record.scopes),
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "last_used_at": last_used,
        "revoked": record.revoked,
        "expired": record.expired(),
    }


def create_router(tokens: TokenRegistry) -> APIRouter:
    router = APIRouter(prefix="/v1/tokens", tags=["tokens"])

    @router.post("", status_code=201, dependencies=[Depends(require(ADMIN))])
    async def create_token(body: GrantBody) -> dict[str, Any]:
        text, record = await tokens.issue(body.name, body.permissions(), expires_at=body.expiry())
        return {**token_json(record), "token": text}

    @router.get("", dependencies=[Depends(require(READ))])
    async def list_tokens() -> dict[str, Any]:
        await tokens.reload()  # with those issued or revoked on other nodes
        used = await tokens.last_use.read()
        return {"tokens": [token_json(record, used.get(record.id)) for record in tokens.list()]}

    @router.delete("/{token_id}", dependencies=[Depends(require(ADMIN))])
    async def revoke_token(token_id: str) -> dict[str, Any]:
        return token_json(await tokens.revoke(token_id))

    return router
