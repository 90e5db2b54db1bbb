"""Aliases: names that point at one version of a function (``live`` is the one deploys
move). Triggers and calls that name an alias follow it as soon as it moves, so a version
can be promoted, or rolled back, without a deploy."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from triggerfish.api.bounds import Number
from triggerfish.api.deps import control_of, path, require
from triggerfish.control import AliasRecord
from triggerfish.errors import NotFoundError

router = APIRouter(prefix="/v1", tags=["aliases"])


class AliasBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str | Number = Field(description="a version id, or a version number")


def alias_view(record: AliasRecord, numbers: dict[str, int]) -> dict[str, Any]:
    return {
        "function": record.function,
        "alias": record.name,
        "version": record.version,
        "number": numbers.get(record.version),
    }


async def one_view(request: Request, record: AliasRecord) -> dict[str, Any]:
    return alias_view(record, await control_of(request).aliases.numbers(record.function))


@router.get("/functions/{name}/aliases", dependencies=[Depends(require("read"))])
async def list_aliases(name: str, request: Request) -> dict[str, Any]:
    aliases = control_of(request).aliases
    records = await aliases.all(name)
    numbers = await aliases.numbers(name)
    return {"aliases": [alias_view(record, numbers) for record in records]}


@router.get("/functions/{name}/aliases/{alias}", dependencies=[Depends(require("read"))])
async def get_alias(name: str, alias: str, request: Request) -> dict[str, Any]:
    record = await control_of(request).aliases.find(name, alias)
    if record is None:
        raise NotFoundError(f"function {name!r} has no alias {alias!r}")
    return await one_view(request, record)


@router.put(
    "/functions/{name}/aliases/{alias}", dependencies=[Depends(require("deploy", path("name")))]
)
async def put_alias(name: str, alias: str, body: AliasBody, request: Request) -> dict[str, Any]:
    record = await control_of(request).aliases.set(name, alias, body.version)
    return await one_view(request, record)


@router.delete(
    "/functions/{name}/aliases/{alias}",
    status_code=204,
    dependencies=[Depends(require("deploy", path("name")))],
)
async def delete_alias(name: str, alias: str, request: Request) -> None:
    await control_of(request).aliases.delete(name, alias)
