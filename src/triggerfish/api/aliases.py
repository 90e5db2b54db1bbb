"""Aliases: names that point at one version of a function (``live`` is the one deploys
move). Triggers and calls that name an alias follow it as soon as it moves, so a version
can be promoted, or rolled back, without a deploy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from triggerfish.api.deps import node_of, require
from triggerfish.errors import NotFoundError
from triggerfish.store.records import AliasRecord

if TYPE_CHECKING:
    from triggerfish.node import Node

router = APIRouter(prefix="/v1", tags=["aliases"])


class AliasBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str | int = Field(description="a version id, or a version number")


async def version_numbers(node: Node, function: str) -> dict[str, int]:
    """The number of each version of ``function``, by version id (one store read for
    any number of aliases)."""
    return {v.version: v.number for v in await node.store.list_versions(function)}


def alias_view(record: AliasRecord, numbers: dict[str, int]) -> dict[str, Any]:
    return {
        "function": record.function,
        "alias": record.name,
        "version": record.version,
        "number": numbers.get(record.version),
    }


async def one_view(request: Request, record: AliasRecord) -> dict[str, Any]:
    return alias_view(record, await version_numbers(node_of(request), record.function))


@router.get("/functions/{name}/aliases", dependencies=[Depends(require("read"))])
async def list_aliases(name: str, request: Request) -> dict[str, Any]:
    node = node_of(request)
    records = await node.store.list_aliases(name)
    numbers = await version_numbers(node, name)
    return {"aliases": [alias_view(record, numbers) for record in records]}


@router.get("/functions/{name}/aliases/{alias}", dependencies=[Depends(require("read"))])
async def get_alias(name: str, alias: str, request: Request) -> dict[str, Any]:
    for record in await node_of(request).store.list_aliases(name):
        if record.name == alias:
            return await one_view(request, record)
    raise NotFoundError(f"function {name!r} has no alias {alias!r}")


@router.put("/functions/{name}/aliases/{alias}", dependencies=[Depends(require("deploy"))])
async def put_alias(name: str, alias: str, body: AliasBody, request: Request) -> dict[str, Any]:
    record = await node_of(request).set_alias(name, alias, body.version)
    return await one_view(request, record)


@router.delete(
    "/functions/{name}/aliases/{alias}", status_code=204, dependencies=[Depends(require("deploy"))]
)
async def delete_alias(name: str, alias: str, request: Request) -> None:
    await node_of(request).delete_alias(name, alias)
