"""API Gateway's REST API payload (v1) for the routes of ``http:`` triggers that ask for
it (``payload: v1``), for Lambda code written against REST APIs and SAM ``Api`` events.

The event has v1's fields as AWS sends them: ``resource`` (the route's path as
declared), ``path``, ``httpMethod``, ``headers`` and ``multiValueHeaders``,
``queryStringParameters`` and ``multiValueQueryStringParameters``, ``pathParameters``,
``stageVariables`` and ``requestContext`` (null where AWS sends null), ``body`` (base64
when it is not text, with ``isBase64Encoded``). The stage is ``Prod``, as SAM's implicit
API, and is not in the path.

The answer is mapped as a REST API maps a proxy integration's: a dict with
``statusCode`` (``headers``, ``multiValueHeaders``, a string ``body``,
``isBase64Encoded``); anything else is a 502, as API Gateway answers a malformed
proxy response.
"""

from __future__ import annotations

import base64
import time
from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import Request, Response

from triggerfish.api.forwarded import forward
from triggerfish.functions.triggers import HttpOptions
from triggerfish.ids import new_id
from triggerfish.runtime.base import InvocationResult
from triggerfish.sources.routes import DEFAULT_ROUTE, Route

STAGE = "Prod"


def rest_event(
    request: Request,
    route: Route,
    params: dict[str, str],
    body: bytes,
    *,
    path: str,
    options: HttpOptions,
    account: str,
    api_id: str,
    as_text: Any,
) -> dict[str, Any]:
    """The request as an API Gateway REST API (v1) proxy event."""
    multi: dict[str, list[str]] = {}
    for raw_name, raw_value in request.headers.raw:
        name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
        if name.lower() == "authorization" and options.auth == "token":
            continue  # the API token stays with Triggerfish
        multi.setdefault(_title(name), []).append(value)
    headers = {name: values[-1] for name, values in multi.items()}
    lower = {name.lower(): value for name, value in headers.items()}
    raw_query = request.scope.get("query_string", b"").decode("latin-1")
    query_multi: dict[str, list[str]] = {}
    for key, value in parse_qsl(raw_query, keep_blank_values=True):
        query_multi.setdefault(key, []).append(value)
    resource = "/{proxy+}" if route.key == DEFAULT_ROUTE else route.key.split(" ", 1)[1]
    if route.key == DEFAULT_ROUTE:
        params = {"proxy": path.lstrip("/")}
    now = time.time()
    host = lower.get("host", "localhost").split(":")[0]
    text = as_text(body, lower.get("content-type")) if body else None
    return {
        "resource": resource,
        "path": path,
        "httpMethod": request.method,
        "headers": headers or None,
        "multiValueHeaders": multi or None,
        "queryStringParameters": {k: v[-1] for k, v in query_multi.items()} or None,
        "multiValueQueryStringParameters": query_multi or None,
        "pathParameters": params or None,
        "stageVariables": None,
        "requestContext": {
            "accountId": account,
            "apiId": api_id,
            "resourceId": new_id()[:6],
            "resourcePath": resource,
            "httpMethod": request.method,
            "extendedRequestId": new_id(),
            "requestId": new_id(),
            "requestTime": _request_time(now),
            "requestTimeEpoch": int(now * 1000),
            "path": path,
            "protocol": f"HTTP/{request.scope.get('http_version', '1.1')}",
            "stage": STAGE,
            "domainName": host,
            "domainPrefix": host.split(".")[0],
            "identity": {
                "sourceIp": forward(lower, request.scope),
                "userAgent": lower.get("user-agent"),
                "accessKey": None,
                "accountId": None,
                "caller": None,
                "user": None,
                "userArn": None,
            },
        },
        "body": (text if text is not None else base64.b64encode(body).decode()) if body else None,
        "isBase64Encoded": bool(body) and text is None,
    }


def _title(name: str) -> str:
    """``content-type`` -> ``Content-Type``, as API Gateway passes header names."""
    return "-".join(part[:1].upper() + part[1:] for part in name.split("-"))


def _request_time(now: float) -> str:
    return time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now))


def rest_response(result: InvocationResult, structured: Any, message: Any) -> Response:
    """The response for an invocation behind a v1 route (see the module's docstring);
    ``structured`` builds a response from a proxy answer, ``message`` an error."""
    if result.status == "timeout":
        return message(504, "Endpoint request timed out")  # type: ignore[no-any-return]
    if result.status != "ok":
        return message(502, "Internal server error")  # type: ignore[no-any-return]
    try:
        value = orjson.loads(result.result or b"null")
    except orjson.JSONDecodeError:
        value = None
    body = value.get("body") if isinstance(value, dict) else None
    if (
        not isinstance(value, dict)
        or "statusCode" not in value
        or not (body is None or isinstance(body, str))
    ):
        return message(502, "Internal server error")  # type: ignore[no-any-return]
    value = {k: v for k, v in value.items() if k != "cookies"}  # not in v1's answer
    try:
        response: Response = structured(value, {"x-triggerfish-invocation-id": result.request_id})
    except (TypeError, ValueError):
        return message(502, "Internal server error")  # type: ignore[no-any-return]
    return response
