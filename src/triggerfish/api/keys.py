"""Access keys for the S3 and Lambda APIs (and ``/v1``, signed): ``/v1/keys``.

Creating or revoking a key needs ``admin`` (a key could otherwise grant more than its
creator has); listing needs ``read``. The secret is in the answer to the creation
only. A key takes scopes, resources and an expiry as a token does (``api.tokens``);
a key created without scopes may do everything (``admin``), as keys always could.
Listings show each key's permissions and when it was last used (to within a minute),
functions' own keys among them.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends

from triggerfish.api.deps import require
from triggerfish.api.tokens import GrantBody
from triggerfish.security.access_keys import AccessKey, AccessKeys
from triggerfish.security.permissions import ADMIN, READ


def key_json(key: AccessKey, last_used: float | None = None) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "created_at": key.created_at,
        "function": key.function,
        "revoked": key.revoked,
        "scopes": list(key.permissions),
        "expires_at": key.expires_at,
        "expired": key.expires_at is not None and time.time() >= key.expires_at,
        "last_used_at": last_used,
    }


def create_router(keys: AccessKeys) -> APIRouter:
    router = APIRouter(prefix="/v1/keys", tags=["keys"])

    @router.post("", status_code=201, dependencies=[Depends(require(ADMIN))])
    async def create_key(body: GrantBody | None = None) -> dict[str, Any]:
        body = body or GrantBody()
        limited = body.scopes or body.topics or body.functions or body.buckets
        key_id, secret = await keys.create(
            body.name,
            permissions=body.permissions() if limited else None,
            expires_at=body.expiry(),
        )
        return {**key_json(await keys.get(key_id)), "secret": secret}

    @router.get("", dependencies=[Depends(require(READ))])
    async def list_keys() -> dict[str, Any]:
        used = await keys.last_use.read()
        return {"keys": [key_json(key, used.get(key.id)) for key in await keys.list()]}

    @router.delete("/{key_id}", dependencies=[Depends(require(ADMIN))])
    async def revoke_key(key_id: str) -> dict[str, Any]:
        return key_json(await keys.revoke(key_id))

    return router
