"""The Lambda API under ``/2015-03-31``: ``Invoke`` (see ``invoke``), and the look-ups
tools make before invoking: ``GetFunction``, ``ListFunctions`` (``Marker``/``MaxItems``
paging, ``FunctionVersion=ALL``) and ``ListVersionsByFunction``, in Lambda's shapes
(see ``shapes``). Every route takes SigV4 or a Bearer token (see ``auth``) and answers
errors in Lambda's shape (see ``errors``)."""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from triggerfish.api.lambda_.auth import authenticate
from triggerfish.api.lambda_.errors import LambdaRoute, invalid_parameter
from triggerfish.api.lambda_.invoke import Invocations
from triggerfish.api.lambda_.shapes import LATEST, configuration, qualifier_or_live, split_name
from triggerfish.errors import NotFoundError
from triggerfish.store.records import VersionRecord

if TYPE_CHECKING:
    from triggerfish.node import Node

DEFAULT_MAX_ITEMS = 50


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def max_items(request: Request) -> int:
    text = request.query_params.get("MaxItems")
    if text is None:
        return DEFAULT_MAX_ITEMS
    if not text.isdigit() or not 1 <= int(text) <= 10000:
        raise invalid_parameter("MaxItems must be an integer from 1 to 10000")
    return int(text)


def encode_marker(function: str, position: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([function, position])).decode("ascii")


def decode_marker(marker: str | None) -> tuple[str, int] | None:
    if not marker:
        return None
    try:
        function, position = orjson.loads(base64.urlsafe_b64decode(marker.encode("ascii")))
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise invalid_parameter("Marker is not one this API returned") from None
    if not isinstance(function, str) or not isinstance(position, int):
        raise invalid_parameter("Marker is not one this API returned")
    return function, position


Item = tuple[tuple[str, int], dict[str, Any]]


def page(items: list[Item], request: Request, field: str) -> dict[str, Any]:
    """The items after the request's ``Marker``, at most ``MaxItems`` of them, under
    ``field``, with the ``NextMarker`` of the next page when there is one."""
    limit = max_items(request)
    after = decode_marker(request.query_params.get("Marker"))
    if after is not None:
        items = [item for item in items if item[0] > after]
    shown = items[:limit]
    out: dict[str, Any] = {field: [body for _key, body in shown]}
    if len(items) > limit:
        out["NextMarker"] = encode_marker(*shown[-1][0])
    return out


def create_router(node: Node) -> APIRouter:
    """The Lambda API over ``node``; mount it with ``app.include_router``."""
    router = APIRouter(prefix="/2015-03-31", tags=["lambda"], route_class=LambdaRoute)
    invocations = Invocations(node)

    def code_size(version: VersionRecord) -> int:
        path = node.artifacts.zip_path(version.digest)
        return path.stat().st_size if path.exists() else 0

    def describe(
        version: VersionRecord, qualifier: str | None = None, label: str | None = None
    ) -> dict[str, Any]:
        return configuration(
            version, qualifier=qualifier, label=label, code_size=code_size(version)
        )

    async def all_versions(function: str) -> list[Item]:
        """``$LATEST`` first, then every version by number, as Lambda lists them."""
        versions = await node.store.list_versions(function)
        if not versions:
            return []
        items: list[Item] = [((function, 0), describe(versions[-1], LATEST, LATEST))]
        for version in versions:
            label = str(version.number)
            items.append(((function, version.number), describe(version, label)))
        return items

    @router.post("/functions/{name}/invocations", summary="Invoke (Lambda)")
    async def invoke(name: str, request: Request) -> Response:
        """Served by ``LambdaInvokeMiddleware`` when the application has it (see
        ``invoke``); this route documents the operation and serves it otherwise."""
        return await invocations.handle(name, request)

    @router.get("/functions/{name}", summary="GetFunction (Lambda)")
    async def get_function(name: str, request: Request) -> Response:
        await authenticate(node, request, await request.body(), "read")
        function, qualifier = split_name(name, request.query_params.get("Qualifier"))
        version = await node.store.resolve(function, qualifier_or_live(qualifier))
        label = LATEST if qualifier == LATEST else None
        config = describe(version, qualifier, label)
        return json_response(
            {
                "Configuration": config,
                "Code": {"RepositoryType": "Triggerfish"},
                "Tags": {},
                "Concurrency": {
                    "ReservedConcurrentExecutions": int(version.config.get("max_concurrency", 10))
                },
            }
        )

    @router.get("/functions", summary="ListFunctions (Lambda)")
    @router.get("/functions/", include_in_schema=False)
    async def list_functions(request: Request) -> Response:
        await authenticate(node, request, await request.body(), "read")
        every = request.query_params.get("FunctionVersion")
        if every not in (None, "ALL"):
            raise invalid_parameter("FunctionVersion must be ALL when given")
        max_items(request)  # a bad MaxItems is refused before any work
        items: list[Item] = []
        for function in await node.store.list_functions():
            try:
                if every == "ALL":
                    items.extend(await all_versions(function.name))
                else:
                    live = await node.store.resolve(function.name)
                    items.append(((function.name, 0), describe(live)))
            except NotFoundError:
                continue  # deleted, or without a live version, while we listed
        return json_response(page(items, request, "Functions"))

    @router.get("/functions/{name}/versions", summary="ListVersionsByFunction (Lambda)")
    async def list_versions(name: str, request: Request) -> Response:
        await authenticate(node, request, await request.body(), "read")
        function, qualifier = split_name(name, None)
        if qualifier is not None:
            raise invalid_parameter("ListVersionsByFunction takes an unqualified function name")
        items = await all_versions(function)
        return json_response(page(items, request, "Versions"))

    return router
