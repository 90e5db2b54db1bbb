"""Functions: deploy (a zip of the code and its config), list, describe, delete, invoke."""

from __future__ import annotations

import base64
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, File, Form, Request, Response, UploadFile
from fastapi.responses import JSONResponse

from triggerfish.api.deps import node_of, require
from triggerfish.errors import ConfigError
from triggerfish.functions.manifest import parse_function_config
from triggerfish.runtime.base import InvocationResult

router = APIRouter(prefix="/v1", tags=["functions"])

MAX_CODE_BYTES = 250 * 1024 * 1024  # as Lambda's unzipped limit


@router.put("/functions/{name}", dependencies=[Depends(require("deploy"))])
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
    result = await node_of(request).deploy(name, function_config, code_zip)
    return {
        "function": result.function,
        "version": result.version,
        "number": result.number,
        "created": result.created,
        "triggers_added": list(result.triggers_added),
        "triggers_removed": list(result.triggers_removed),
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
    return {"functions": await node_of(request).describe_functions()}


@router.get("/functions/{name}", dependencies=[Depends(require("read"))])
async def get_function(name: str, request: Request) -> dict[str, Any]:
    return await node_of(request).describe_function(name)


@router.delete("/functions/{name}", status_code=204, dependencies=[Depends(require("deploy"))])
async def delete_function(name: str, request: Request) -> None:
    await node_of(request).delete_function(name)


def invocation_headers(result: InvocationResult, version: str) -> dict[str, str]:
    headers = {
        "X-Triggerfish-Invocation-Id": result.request_id,
        "X-Triggerfish-Status": result.status,
        "X-Triggerfish-Executed-Version": version,
        "X-Triggerfish-Duration-Ms": f"{result.duration_ms:.3f}",
    }
    if result.status != "ok":
        headers["X-Triggerfish-Function-Error"] = "Unhandled"
    return headers


@router.post("/functions/{name}/invoke", dependencies=[Depends(require("invoke"))])
async def invoke(
    name: str,
    request: Request,
    mode: Literal["sync", "async"] = "sync",
    qualifier: str = "live",
    log: bool = False,
) -> Response:
    """Synchronous by default: the handler's result (or its error with
    ``X-Triggerfish-Function-Error``, status 200, as Lambda does). ``mode=async``: 202 once
    the payload is durable; it runs with the function's async retry policy."""
    node = node_of(request)
    payload = await request.body() or b"{}"
    if mode == "async":
        stored = await node.invoker.invoke_async(name, payload, qualifier=qualifier)
        return JSONResponse(
            {"function": name, "event_id": stored.id, "offset": stored.offset}, status_code=202
        )
    result = await node.invoker.invoke(name, payload, qualifier=qualifier)
    version = await node.version_of(name, qualifier)
    headers = invocation_headers(result, version)
    if log:
        tail = result.logs.encode()[-4096:]
        headers["X-Triggerfish-Log-Result"] = base64.b64encode(tail).decode()
    body = result.result if result.status == "ok" else orjson.dumps(result.error_document())
    return Response(body or b"null", media_type="application/json", headers=headers)


@router.get("/triggers", dependencies=[Depends(require("read"))])
async def list_triggers(request: Request, function: str | None = None) -> dict[str, Any]:
    return {"triggers": await node_of(request).describe_triggers(function)}
