"""The Lambda API under ``/2015-03-31``: ``Invoke`` (see ``invoke``), and the look-ups
tools make before invoking: ``GetFunction``, ``ListFunctions`` (``Marker``/``MaxItems``
paging, ``FunctionVersion=ALL``) and ``ListVersionsByFunction``, in Lambda's shapes
(see ``shapes``). Every route takes SigV4 or a Bearer token (see ``auth``); all but
``Invoke`` need ``deploy`` on the function (``ListFunctions`` lists those the caller
may deploy), and errors are answered in Lambda's shape (see ``errors``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from triggerfish.api.lambda_.aliases import add_alias_routes
from triggerfish.api.lambda_.auth import authenticate, principal
from triggerfish.api.lambda_.errors import LambdaRoute, invalid_parameter
from triggerfish.api.lambda_.invoke import Invocations
from triggerfish.api.lambda_.paging import Item, json_response, max_items, page
from triggerfish.api.lambda_.shapes import LATEST, configuration, qualifier_or_live, split_name
from triggerfish.api.raw import RawRequest
from triggerfish.control import VersionRecord
from triggerfish.errors import NotFoundError
from triggerfish.security.permissions import DEPLOY

if TYPE_CHECKING:
    from triggerfish.node import Node


def create_router(node: Node) -> APIRouter:
    """The Lambda API over ``node``; mount it with ``app.include_router``."""
    router = APIRouter(prefix="/2015-03-31", tags=["lambda"], route_class=LambdaRoute)
    invocations = Invocations(node)
    functions = node.control.functions

    def code_size(version: VersionRecord) -> int:
        path = node.artifacts.zip_path(version.digest)
        return path.stat().st_size if path.exists() else 0

    def describe(
        version: VersionRecord, qualifier: str | None = None, label: str | None = None
    ) -> dict[str, Any]:
        return configuration(
            version,
            qualifier=qualifier,
            label=label,
            code_size=code_size(version),
            region=node.settings.region,
        )

    async def all_versions(function: str) -> list[Item]:
        """``$LATEST`` first, then every version by number, as Lambda lists them."""
        versions = await functions.versions(function)
        if not versions:
            return []
        items: list[Item] = [((function, 0), describe(versions[-1], LATEST, LATEST))]
        for version in versions:
            label = str(version.number)
            items.append(((function, version.number), describe(version, label)))
        return items

    @router.post(
        "/functions/{name}/invocations",
        summary="Invoke (Lambda)",
        responses={
            202: {"description": "InvocationType Event: the payload is durable and will run"},
            204: {"description": "InvocationType DryRun: the call would be allowed"},
        },
    )
    async def invoke(name: str, request: Request) -> Response:
        """Served by ``api.fastpath`` in front of the application when it has it (see
        ``invoke``); this route documents the operation and serves it otherwise."""
        reply = await invocations.handle(name, RawRequest(request.scope, request.receive))
        return reply.response()

    @router.get("/functions/{name}", summary="GetFunction (Lambda)")
    async def get_function(name: str, request: Request) -> Response:
        function, qualifier = split_name(name, request.query_params.get("Qualifier"))
        await authenticate(node, request, await request.body(), DEPLOY, function)
        version = await functions.version(function, qualifier_or_live(qualifier))
        label = LATEST if qualifier == LATEST else None
        config = describe(version, qualifier, label)
        return json_response(
            {
                "Configuration": config,
                "Code": {"RepositoryType": "Triggerfish"},
                "Tags": {},
                "Concurrency": {"ReservedConcurrentExecutions": version.settings.max_concurrency},
            }
        )

    @router.get("/functions", summary="ListFunctions (Lambda)")
    @router.get("/functions/", include_in_schema=False)
    async def list_functions(request: Request) -> Response:
        who = await principal(node, request, await request.body())
        if not who.policy.grants_any(DEPLOY):
            who.require(DEPLOY)  # raises, naming the scope
        every = request.query_params.get("FunctionVersion")
        if every not in (None, "ALL"):
            raise invalid_parameter("FunctionVersion must be ALL when given")
        max_items(request)  # a bad MaxItems is refused before any work
        items: list[Item] = []
        for name in await functions.names():
            if not who.allows(DEPLOY, name):
                continue
            try:
                if every == "ALL":
                    items.extend(await all_versions(name))
                else:
                    live = await functions.version(name)
                    items.append(((name, 0), describe(live)))
            except NotFoundError:
                continue  # deleted, or without a live version, while we listed
        return json_response(page(items, request, "Functions"))

    @router.get("/functions/{name}/versions", summary="ListVersionsByFunction (Lambda)")
    async def list_versions(name: str, request: Request) -> Response:
        function, qualifier = split_name(name, None)
        await authenticate(node, request, await request.body(), DEPLOY, function)
        if qualifier is not None:
            raise invalid_parameter("ListVersionsByFunction takes an unqualified function name")
        items = await all_versions(function)
        return json_response(page(items, request, "Versions"))

    add_alias_routes(router, node)
    return router
