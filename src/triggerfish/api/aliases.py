"""Aliases: names that point at one version of a function (``live`` is the one deploys
move). Triggers and calls that name an alias follow it as soon as it moves, so a version
can be promoted, or rolled back, without a deploy."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from triggerfish.api.deps import node_of, require
from triggerfish.errors import NotFoundError
from triggerfish.store.records import AliasRecord

router = APIRouter(prefix="/v1", tags=["aliases"])


class AliasBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str | int = Field(description="a version id, or a version number")


async def alias_view(request: Request, record: AliasRecord) -> dict[str, Any]:
    versions = await node_of(request).store.list_versions(record.function)
    number = next((v.number for v in versions if v.version == record.version), None)
    return {
        "function": record.function,
        "alias": record.name,
        "version": record.version,
        "number": number,
    }


@router.get("/functions/{name}/aliases", dependencies=[Depends(require("read"))])
async def list_aliases(name: str, request: Request) -> dict[str, Any]:
    records = await node_of(request).store.list_aliases(name)
    return {"aliases": [await alias_view(request, record) for record in records]}


@router.get("/functions/{name}/aliases/{alias}", dependencies=[Depends(require("read"))])
async def get_alias(name: str, alias: str, request: Request) -> dict[str, Any]:
    for record in await node_of(request).store.list_aliases(name):
        if record.name == alias:
            return await alias_view(request, record)
    raise NotFoundError(f"function {name!r} has no alias {alias!r}")


@router.put("/functions/{name}/aliases/{alias}", dependencies=[Depends(require("deploy"))])
async def put_alias(name: str, alias: str, body: AliasBody, request: Request) -> dict[str, Any]:
    record = await node_of(request).set_alias(name, alias, body.version)
    return await alias_view(request, record)


@router.delete(
    "/functions/{name}/aliases/{alias}", status_code=204, dependencies=[Depends(require("deploy"))]
)
async def delete_alias(name: str, alias: str, request: Request) -> None:
    await node_of(request).delete_alias(name, alias)
