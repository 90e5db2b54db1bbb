"""Functions: deploy (a zip of the code and its config), list, describe, delete, invoke."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, File, Form, Request, Response, UploadFile
from fastapi.responses import JSONResponse

from triggerfish.api.deps import control_of, invoked, node_of, path, require
from triggerfish.api.invoke import Params, invoke_sync
from triggerfish.errors import ConfigError
from triggerfish.functions.manifest import parse_function_config
from triggerfish.security.permissions import Principal

router = APIRouter(prefix="/v1", tags=["functions"])

MAX_CODE_BYTES = 250 * 1024 * 1024  # as Lambda's unzipped limit


@router.put("/functions/{name}", dependencies=[Depends(require("deploy", path("name")))])
async def deploy(
    name: str,
    request: Request,
    config: Annotated[str, Form(description="the function's settings as JSON")],
    code: Annotated[UploadFile, File(description="a zip of the function's code folder")],
) -> dict[str, Any]:
    try:
        raw = orjson.loads(config)
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"config: not valid JSON: {exc}") from None
    function_config = parse_function_config(name, raw, origin="config")
    code_zip = await code.read(MAX_CODE_BYTES + 1)
    if len(code_zip) > MAX_CODE_BYTES:
        raise ConfigError(f"code: the zip is over the {MAX_CODE_BYTES // 1024 // 1024} MB limit")
    result = await control_of(request).functions.deploy(name, function_config, code_zip)
    return {
        "function": result.function,
        "version": result.version,
        "number": result.number,
        "created": result.created,
        "triggers_added": list(result.triggers_added),
        "triggers_removed": list(result.triggers_removed),
        "notes": list(result.notes),
        "build": None
        if result.build is None
        else {
            "key": result.build.key,
            "cached": result.build.cached,
            "seconds": result.build.seconds,
            "python": result.build.python,
        },
    }


@router.get("/functions", dependencies=[Depends(require("read"))])
async def list_functions(request: Request) -> dict[str, Any]:
    return {"functions": await control_of(request).functions.describe_all()}


@router.get("/functions/{name}")
async def get_function(
    name: str, request: Request, principal: Annotated[Principal, Depends(require("read"))]
) -> dict[str, Any]:
    """A version's environment values are shown to a credential that may deploy the
    function, as the Lambda API's ``GetFunction`` shows them; others see the names,
    the secret references and "****" for each plain value."""
    values = principal.allows("deploy", name)
    return await control_of(request).functions.describe(name, environment_values=values)


@router.delete(
    "/functions/{name}", status_code=204, dependencies=[Depends(require("deploy", path("name")))]
)
async def delete_function(name: str, request: Request) -> None:
    await control_of(request).functions.delete(name)


@router.post(
    "/functions/{name}/invoke",
    dependencies=[Depends(require("invoke", invoked))],
    responses={202: {"description": "mode=async: the payload is durable and will run"}},
)
async def invoke(
    name: str,
    request: Request,
    mode: Literal["sync", "async"] = "sync",
    qualifier: str = "live",
    log: bool = False,
) -> Response:
    """Synchronous by default: the handler's result (or its error with
    ``X-Triggerfish-Function-Error``, status 200, as Lambda does). ``mode=async``: 202 once
    the payload is durable; it runs with the function's async retry policy. A valid
    synchronous call is answered in front of the router (``api.invoke``), with the same
    reply."""
    node = node_of(request)
    payload = await request.body() or b"{}"
    if mode == "async":
        node.disk.admit()  # no new event while the disk is low (observe/disk.py)
        stored = await node.invoker.invoke_async(
            name, payload, qualifier=qualifier, trace=request.headers
        )
        return JSONResponse(
            {"function": name, "event_id": stored.id, "offset": stored.offset}, status_code=202
        )
    params = Params(qualifier=qualifier, log=log)
    reply = await invoke_sync(node, name, payload, params, request.headers)
    return reply.response()


@router.get("/triggers", dependencies=[Depends(require("read"))])
async def list_triggers(request: Request, function: str | None = None) -> dict[str, Any]:
    return {"triggers": await control_of(request).functions.triggers(function)}
