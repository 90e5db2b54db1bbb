"""The Lambda API beyond ``/2015-03-31/functions``: ``GetAccountSettings``, and a
Lambda-shaped answer to every path of the Lambda API that Triggerfish does not serve.

Lambda's operations live under a few dated prefixes (``/2015-03-31/``,
``/2016-08-19/account-settings``, ``/2017-03-31/tags``, ``/2018-10-31/layers`` ...).
A request to one of them that no route serves is answered as Lambda answers an
operation it does not know: 404 ``UnknownOperationException`` in JSON, never S3's XML
nor the control API's problem document, so an SDK raises a ``ClientError`` that says so.
``is_lambda_request`` tells the S3 middleware which requests to leave alone: those to
these prefixes, and any signed for the ``lambda`` service.

``GetAccountSettings`` reports the limits this node enforces: the code package sizes
(the zip a deploy uploads, and its unpacked size), the node's concurrency (as many
environments of the smallest memory size as its memory budget holds), and as
``TotalCodeSize`` the room on the disk that keeps code. Nothing is reserved for one
function (``max_concurrency`` caps, it does not set aside), so the unreserved
concurrency is the whole of it. The usage is the number of functions and the size of
the code packages stored on this node.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from triggerfish.api.functions import MAX_CODE_BYTES
from triggerfish.api.lambda_.auth import SERVICE, principal
from triggerfish.api.lambda_.errors import LambdaError, LambdaRoute
from triggerfish.api.lambda_.paging import json_response
from triggerfish.functions.package import DEFAULT_MAX_SIZE

if TYPE_CHECKING:
    from triggerfish.node import Node

#: The dated prefixes of Lambda's operations (the Runtime API's ``/2018-06-01`` is not
#: one: it is served to ``provided`` functions on their own port).
LAMBDA_PREFIXES = (
    "/2014-11-13/",
    "/2015-03-31/",
    "/2016-08-19/",
    "/2017-03-31/",
    "/2017-10-31/",
    "/2018-10-31/",
    "/2019-09-25/",
    "/2019-09-30/",
    "/2020-04-22/",
    "/2020-06-30/",
    "/2021-07-20/",
    "/2021-10-31/",
    "/2021-11-15/",
    "/2025-12-01/",
)
SMALLEST_MEMORY_MB = 128
_CREDENTIAL = re.compile(rb"Credential=[^/,\s]+/\d{8}/[^/,\s]*/([^/,\s]+)/aws4_request")
_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]


def is_lambda_request(scope: Scope) -> bool:
    """A request for the Lambda API: to one of its prefixes (unless signed for S3), or
    signed for the ``lambda`` service."""
    service = _signed_service(scope)
    if service is not None:
        return service == SERVICE.encode()
    path: str = scope.get("path", "")
    return path.startswith(LAMBDA_PREFIXES)


def _signed_service(scope: Scope) -> bytes | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            match = _CREDENTIAL.search(value)
            return match.group(1) if match is not None else None
    query: bytes = scope.get("query_string", b"")
    match = _CREDENTIAL.search(query.replace(b"%2F", b"/").replace(b"%2f", b"/"))
    return match.group(1) if match is not None else None


def create_account_router(node: Node) -> APIRouter:
    """``GetAccountSettings``, then the answer to every other path of Lambda's prefixes;
    include it after every other Lambda route."""
    router = APIRouter(tags=["lambda"], route_class=LambdaRoute)

    @router.get("/2016-08-19/account-settings", summary="GetAccountSettings (Lambda)")
    @router.get("/2016-08-19/account-settings/", include_in_schema=False)
    async def get_account_settings(request: Request) -> Response:
        await principal(node, request, await request.body())
        functions = len(await node.control.functions.names())
        stored, room = await asyncio.to_thread(_code_storage, node.artifacts.root)
        concurrency = max(1, node.executor.memory_capacity_mb // SMALLEST_MEMORY_MB)
        return json_response(
            {
                "AccountLimit": {
                    "TotalCodeSize": stored + room,
                    "CodeSizeUnzipped": DEFAULT_MAX_SIZE,
                    "CodeSizeZipped": MAX_CODE_BYTES,
                    "ConcurrentExecutions": concurrency,
                    "UnreservedConcurrentExecutions": concurrency,
                },
                "AccountUsage": {"TotalCodeSize": stored, "FunctionCount": functions},
            }
        )

    async def unknown_operation(request: Request) -> Response:
        raise LambdaError(
            404,
            "UnknownOperationException",
            f"Unknown operation: {request.method} {request.url.path} is not an operation "
            "of the Lambda API that Triggerfish serves (docs/lambda.md lists them)",
        )

    for prefix in LAMBDA_PREFIXES:
        router.add_api_route(
            prefix + "{rest:path}", unknown_operation, methods=_METHODS, include_in_schema=False
        )
    return router


def _code_storage(root: Path) -> tuple[int, int]:
    """The bytes of the code packages under ``root``, and the bytes free beside them."""
    stored = 0
    try:
        for package in root.glob("*.zip"):
            try:
                stored += package.stat().st_size
            except OSError:
                continue  # removed while counted
        free = shutil.disk_usage(root).free
    except OSError:
        free = 0
    return stored, free
