"""Access keys for the S3-compatible API: ``/v1/keys``.

Creating or revoking a key needs the ``deploy`` scope (or admin); listing needs
``read``. The secret is in the answer to the creation only.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from triggerfish.api.deps import require
from triggerfish.security.access_keys import AccessKey, AccessKeys


class KeyBody(BaseModel):
    name: str = Field(default="", max_length=200, description="a label for people")


def key_json(key: AccessKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "created_at": key.created_at,
        "function": key.function,
        "revoked": key.revoked,
    }


def create_router(keys: AccessKeys) -> APIRouter:
    router = APIRouter(prefix="/v1/keys", tags=["keys"])

    @router.post("", status_code=201, dependencies=[Depends(require("deploy"))])
    async def create_key(body: KeyBody | None = None) -> dict[str, Any]:
        key_id, secret = await keys.create((body or KeyBody()).name)
        return {"id": key_id, "secret": secret, "name": (body or KeyBody()).name}

    @router.get("", dependencies=[Depends(require("read"))])
    async def list_keys() -> dict[str, Any]:
        return {"keys": [key_json(key) for key in await keys.list()]}

    @router.delete("/{key_id}", dependencies=[Depends(require("deploy"))])
    async def revoke_key(key_id: str) -> dict[str, Any]:
        return key_json(await keys.revoke(key_id))

    return router
