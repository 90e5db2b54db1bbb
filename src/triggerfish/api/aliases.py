"""Aliases: names that point at a version of a function, and may send a share of its
invocations to one more version (``routing``, Lambda's ``AdditionalVersionWeights``).
Triggers and calls that name an alias follow it as soon as it moves, so a version can
be promoted gradually, or rolled back, without a deploy.

Setting an alias pins it: deploys no longer move ``live`` until
``POST .../aliases/live/follow``. A ``rollback`` rule makes the node send every
invocation back to the main version when the weighted one fails too often.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from triggerfish.api.bounds import Number
from triggerfish.api.deps import control_of, path, require
from triggerfish.control import AliasRecord
from triggerfish.control.releases import RollbackRule
from triggerfish.errors import NotFoundError
from triggerfish.store.records import LIVE

router = APIRouter(prefix="/v1", tags=["aliases"])


class AliasBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str | Number = Field(description="a version id, or a version number")
    routing: dict[str, Any] | None = Field(
        default=None,
        description="one more version and the share of invocations it takes, in [0, 1): "
        '{"4": 0.1}; absent or {} sends every invocation to ``version``',
    )
    rollback: str | dict[str, Any] | None = Field(
        default=None,
        description="send every invocation back to ``version`` when the routed version "
        'fails too often: "error_rate>0.05 over 5m", or {"max_error_rate": 0.05, '
        '"window": "5m", "min_invocations": 20}',
    )


def rollback_rule(value: str | dict[str, Any] | None) -> RollbackRule | None:
    """The rule a request gives as text or as an object."""
    if value is None:
        return None
    if isinstance(value, str):
        return RollbackRule.parse(value)
    return RollbackRule.from_json(value)


def alias_view(record: AliasRecord, numbers: dict[str, int]) -> dict[str, Any]:
    extra = record.additional_version
    routing = {} if extra is None else {str(numbers.get(extra, extra)): record.weight}
    return {
        "function": record.function,
        "alias": record.name,
        "version": record.version,
        "number": numbers.get(record.version),
        "routing": routing,
        "additional_version": extra,
        # ``live`` follows deploys until ``alias set`` pins it.
        "following": record.name == LIVE and record.pinned_at is None,
        "pinned_at": record.pinned_at,
        "rollback": record.rollback,
        "rolled_back": record.rolled_back,
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
    rule = rollback_rule(body.rollback)
    record = await control_of(request).aliases.set(
        name,
        alias,
        body.version,
        routing=body.routing,
        rollback=None if rule is None else rule.to_json(),
    )
    return await one_view(request, record)


@router.post(
    "/functions/{name}/aliases/{alias}/follow",
    dependencies=[Depends(require("deploy", path("name")))],
)
async def follow_alias(name: str, alias: str, request: Request) -> dict[str, Any]:
    """Let deploys move ``live`` again, from the next deploy on."""
    record = await control_of(request).aliases.follow(name, alias)
    return await one_view(request, record)


@router.delete(
    "/functions/{name}/aliases/{alias}",
    status_code=204,
    dependencies=[Depends(require("deploy", path("name")))],
)
async def delete_alias(name: str, alias: str, request: Request) -> None:
    await control_of(request).aliases.delete(name, alias)
