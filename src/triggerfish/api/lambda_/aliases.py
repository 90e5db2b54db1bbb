"""Lambda's alias operations: ``CreateAlias``, ``GetAlias``, ``UpdateAlias``,
``DeleteAlias`` and ``ListAliases``, in Lambda's shapes, over Triggerfish's aliases.

An alias points at one version number, and may send a share of its invocations to
one more (``RoutingConfig: {"AdditionalVersionWeights": {"4": 0.1}}``, a weight in
[0, 1)). ``FunctionVersion: $LATEST`` is taken as the newest version at the time of the
call (Lambda's alias would follow later versions: Triggerfish's ``live`` alias is the
one that follows deploys, until an alias operation pins it). ``UpdateAlias`` keeps what
it is not given (the version, the routing); an empty ``RoutingConfig`` ends the
routing. Descriptions are not kept.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from triggerfish.api.lambda_.auth import authenticate
from triggerfish.api.lambda_.errors import LambdaError, invalid_parameter
from triggerfish.api.lambda_.paging import Item, json_response, page
from triggerfish.api.lambda_.shapes import LATEST, function_arn, split_name
from triggerfish.control import AliasRecord
from triggerfish.security.permissions import DEPLOY

if TYPE_CHECKING:
    from triggerfish.node import Node


def weights_of(record: AliasRecord, numbers: dict[str, int]) -> dict[str, float]:
    """Lambda's ``AdditionalVersionWeights`` of an alias: by version number."""
    extra = record.additional_version
    if extra is None or extra not in numbers:
        return {}
    return {str(numbers[extra]): record.weight}


def add_alias_routes(router: APIRouter, node: Node) -> None:
    """Add the alias operations to the Lambda API's ``router``."""
    aliases = node.control.aliases
    region = node.settings.region

    def shape(record: AliasRecord, numbers: dict[str, int]) -> dict[str, Any]:
        number = numbers.get(record.version)
        weights = weights_of(record, numbers)
        revision = uuid.uuid5(
            uuid.NAMESPACE_URL,
            f"{record.function}:{record.name}:{record.version}:{sorted(weights.items())}",
        )
        body: dict[str, Any] = {
            "AliasArn": function_arn(record.function, record.name, region=region),
            "Name": record.name,
            "FunctionVersion": str(number),
            "Description": "",
            "RevisionId": str(revision),
        }
        if weights:
            body["RoutingConfig"] = {"AdditionalVersionWeights": weights}
        return body

    async def one(record: AliasRecord) -> dict[str, Any]:
        return shape(record, await aliases.numbers(record.function))

    async def find(function: str, alias: str) -> AliasRecord:
        record = await aliases.find(function, alias)
        if record is not None:
            return record
        raise LambdaError(
            404,
            "ResourceNotFoundException",
            f"Alias not found: {function_arn(function, alias, region=region)}",
        )

    async def read_body(request: Request, function: str) -> dict[str, Any]:
        raw = await request.body()
        await authenticate(node, request, raw, DEPLOY, function)
        try:
            body = orjson.loads(raw or b"{}")
        except orjson.JSONDecodeError as exc:
            raise invalid_parameter(f"the request body is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise invalid_parameter("the request body must be a JSON object")
        return body

    def routing_of(body: dict[str, Any]) -> dict[str, Any] | None:
        """The ``AdditionalVersionWeights`` of the body; None when it has no
        ``RoutingConfig`` (an empty one is ``{}``: no routing)."""
        config = body.get("RoutingConfig")
        if config is None:
            return None
        if not isinstance(config, dict):
            raise invalid_parameter(
                'RoutingConfig must be an object: {"AdditionalVersionWeights": {"4": 0.1}}'
            )
        weights = config.get("AdditionalVersionWeights") or {}
        if not isinstance(weights, dict):
            raise invalid_parameter(
                'AdditionalVersionWeights must map a version number to a weight: {"4": 0.1}'
            )
        for key in weights:
            if not (isinstance(key, str) and key.isdigit()):
                raise invalid_parameter(
                    f"AdditionalVersionWeights: {key!r} is not a version number"
                )
        return weights

    async def version_of(function: str, body: dict[str, Any], *, required: bool) -> int | None:
        value = body.get("FunctionVersion")
        if value is None:
            if required:
                raise invalid_parameter("FunctionVersion is required: a version number")
            return None
        if value == LATEST:
            versions = await node.control.functions.versions(function)
            if not versions:
                raise LambdaError(
                    404, "ResourceNotFoundException", f"function {function!r} has no versions"
                )
            return versions[-1].number
        if not isinstance(value, str) or not value.isdigit():
            raise invalid_parameter(
                f"FunctionVersion must be a version number or $LATEST, not {value!r}"
            )
        return int(value)

    def plain(name: str) -> str:
        function, qualifier = split_name(name, None)
        if qualifier is not None:
            raise invalid_parameter("alias operations take an unqualified function name")
        return function

    @router.post("/functions/{name}/aliases", summary="CreateAlias (Lambda)", status_code=201)
    async def create_alias(name: str, request: Request) -> Response:
        function = plain(name)
        body = await read_body(request, function)
        alias = body.get("Name")
        if not isinstance(alias, str) or not alias:
            raise invalid_parameter("Name is required: the alias's name")
        number = await version_of(function, body, required=True)
        if await aliases.find(function, alias) is not None:
            raise LambdaError(
                409,
                "ResourceConflictException",
                f"Alias already exists: {function_arn(function, alias, region=region)}",
            )
        assert number is not None
        routing = routing_of(body)
        record = await aliases.set(function, alias, number, routing=routing)
        return json_response(await one(record), 201)

    @router.get("/functions/{name}/aliases/{alias}", summary="GetAlias (Lambda)")
    async def get_alias(name: str, alias: str, request: Request) -> Response:
        function = plain(name)
        await authenticate(node, request, await request.body(), DEPLOY, function)
        return json_response(await one(await find(function, alias)))

    @router.put("/functions/{name}/aliases/{alias}", summary="UpdateAlias (Lambda)")
    async def update_alias(name: str, alias: str, request: Request) -> Response:
        function = plain(name)
        body = await read_body(request, function)
        current = await find(function, alias)
        number = await version_of(function, body, required=False)
        routing = routing_of(body)
        if number is None and routing is None:
            return json_response(await one(current))
        version: str | int = current.version if number is None else number
        if routing is None:  # the routing stays, with its rollback rule
            numbers = await aliases.numbers(function)
            routing = weights_of(current, numbers)
            rollback = current.rollback
        else:
            rollback = None
        record = await aliases.set(function, alias, version, routing=routing, rollback=rollback)
        return json_response(await one(record))

    @router.delete(
        "/functions/{name}/aliases/{alias}", summary="DeleteAlias (Lambda)", status_code=204
    )
    async def delete_alias(name: str, alias: str, request: Request) -> Response:
        function = plain(name)
        await authenticate(node, request, await request.body(), DEPLOY, function)
        await find(function, alias)
        await aliases.delete(function, alias)
        return Response(status_code=204)

    @router.get("/functions/{name}/aliases", summary="ListAliases (Lambda)")
    async def list_aliases(name: str, request: Request) -> Response:
        function = plain(name)
        await authenticate(node, request, await request.body(), DEPLOY, function)
        wanted = request.query_params.get("FunctionVersion")
        items: list[Item] = []
        records = await aliases.all(function)
        numbers = await aliases.numbers(function)
        for position, record in enumerate(records):
            body = shape(record, numbers)
            if wanted is None or body["FunctionVersion"] == wanted:
                items.append(((function, position), body))
        return json_response(page(items, request, "Aliases"))
