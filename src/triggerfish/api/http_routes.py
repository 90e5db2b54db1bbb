"""HTTP routes: requests under ``/fn/`` answered by the functions whose ``http:``
triggers declare a matching route, synchronously, as Lambda function URLs do.

``POST /fn/orders/42`` matches the route ``POST /orders/{id}``: the handler gets an API
Gateway HTTP API (payload format 2.0) event whose ``rawPath`` is ``/orders/42`` (the
path after the ``/fn`` prefix) and ``pathParameters`` ``{"id": "42"}``. Its return value
becomes the response: a dict with ``statusCode`` gives the status, ``headers``,
``multiValueHeaders``, ``cookies`` and ``body`` (``isBase64Encoded`` for bytes); any
other value is a 200 whose JSON body is that value. A failed invocation answers 502
(504 on a timeout), a function at its concurrency limit 429, an unknown route 404, a
body over the ``sync_payload_limit`` 413 (as it streams in, before a signature is
checked), each with API Gateway's ``{"message": ...}`` body.

Per route ``auth``: ``none``; ``token``, an API token with the invoke scope as
``Authorization: Bearer`` (the header is not passed to the function); ``hmac``, the
hex HMAC-SHA256 of the body with the route's secret in ``X-Triggerfish-Signature``
(``sha256=<hex>`` or ``<hex>``). The route table keeps a literal secret sealed, as the
store does; it is opened for each request whose signature is checked. A route with
``cors`` answers browsers' preflights without invoking the function and gives its
answers the ``Access-Control-*`` headers of an allowed origin (``api.route_cors``).

The routes are read from the store and kept until ``Control.generation`` moves (after
any change of functions, aliases or triggers).
This router must be mounted after every other, as it answers any method under ``/fn``.
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from triggerfish.api import route_cors
from triggerfish.api.forwarded import forward
from triggerfish.api.http_v1 import rest_event, rest_response
from triggerfish.api.raw import RawRequest
from triggerfish.control import Control, TriggerRecord
from triggerfish.errors import (
    AuthError,
    ConfigError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    ThrottledError,
)
from triggerfish.events.model import is_json_content_type, is_text_content_type
from triggerfish.functions.triggers import HttpOptions
from triggerfish.ids import new_id
from triggerfish.runtime.base import InvocationResult
from triggerfish.sources.routes import Route, best_route, parse_route
from triggerfish.sources.routes import signature_matches as _signature_matches

if TYPE_CHECKING:
    from triggerfish.node import Node

log = logging.getLogger("triggerfish.http")

PREFIX = "/fn"
SIGNATURE_HEADER = "x-triggerfish-signature"
ACCOUNT_ID = "000000000000"
API_ID = "triggerfish"
_ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
# Headers the server sets itself; a function's value for them is not passed on.
_SKIPPED_RESPONSE_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})
_TEXT_TYPES = ("application/javascript", "application/x-www-form-urlencoded")

router = APIRouter(tags=["http routes"])


@dataclass(frozen=True, slots=True)
class RouteTarget:
    trigger: TriggerRecord
    options: HttpOptions


@dataclass(slots=True)
class RouteTable:
    """The routes of every ``http:`` trigger, reloaded when the generation moves."""

    generation: int = -1
    entries: list[tuple[Route, RouteTarget]] = field(default_factory=list)

    async def current(self, control: Control) -> Sequence[tuple[Route, RouteTarget]]:
        generation = control.generation
        if generation != self.generation:
            entries: list[tuple[Route, RouteTarget]] = []
            for trigger in await control.functions.trigger_records():
                raw = trigger.config.get("http")
                if not raw:
                    continue
                try:
                    options = HttpOptions.model_validate(raw)
                    entries.append((parse_route(options.route), RouteTarget(trigger, options)))
                except (ConfigError, ValueError) as exc:
                    log.error("trigger %s: route not served: %s", trigger.id, exc)
            # Routes claimed twice go to the first trigger by id, the same on every node.
            entries.sort(key=lambda entry: entry[1].trigger.id)
            self.entries, self.generation = entries, generation
        return self.entries


def _table(request: Request) -> RouteTable:
    table: RouteTable | None = getattr(request.app.state, "http_routes", None)
    if table is None:
        table = RouteTable()
        request.app.state.http_routes = table
    return table


def message(status: int, text: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"message": text}, status_code=status, headers=headers)


@router.api_route(PREFIX, methods=_ALL_METHODS, include_in_schema=False)
@router.api_route(PREFIX + "/{path:path}", methods=_ALL_METHODS, include_in_schema=False)
async def answer(request: Request) -> Response:
    node: Node = request.app.state.node
    path = _route_path(request)
    entries = await _table(request).current(node.control)
    if request.method == "OPTIONS":
        answered = route_cors.preflight(entries, path, request.headers)
        if answered is not None:
            return answered
    found = best_route(entries, request.method, path)
    if found is None:
        return message(404, "Not Found")
    route, target, params = found
    response = await _serve(request, node, route, target, params)
    if target.options.cors is not None:
        route_cors.decorate(target.options.cors, route, request.headers, response)
    return response


async def _serve(
    request: Request, node: Node, route: Route, target: RouteTarget, params: dict[str, str]
) -> Response:
    invoked = f"{target.trigger.function}:{target.trigger.qualifier}"
    # A token is checked before the body is read; a signature needs the body, read
    # while counting it (``api.limits`` refuses a longer one before this route runs).
    signed = target.options.auth == "hmac"
    if not signed and (refused := _authenticate(request, node, target, b"", invoked)):
        return refused
    limit = node.settings.sync_payload_limit
    try:
        body = await RawRequest(request.scope, request.receive).body(
            limit, lambda: PayloadTooLargeError(f"over {limit} bytes")
        )
    except PayloadTooLargeError:
        return message(413, "Request Entity Too Large", {"Connection": "close"})
    if signed and (refused := _authenticate(request, node, target, body, invoked)):
        return refused
    v1 = target.options.payload == "v1"
    if v1:
        event = rest_event(
            request, route, params, body, path=_route_path(request), options=target.options,
            account=ACCOUNT_ID, api_id=API_ID, as_text=_as_text,
        )  # fmt: skip
    else:
        event = gateway_event(request, route, params, body, options=target.options)
    try:
        result = await node.invoker.invoke(
            target.trigger.function,
            orjson.dumps(event),
            qualifier=target.trigger.qualifier,
            trace=request.headers,
        )
    except ThrottledError as exc:
        return message(429, "Too Many Requests", {"Retry-After": str(round(exc.retry_after))})
    except PayloadTooLargeError:
        return message(413, "Request Entity Too Large")
    except NotFoundError:
        return message(404, "Not Found")
    if v1:
        return rest_response(result, _structured, message)
    return function_response(result)


def _route_path(request: Request) -> str:
    """The path after the prefix, as it was sent (percent-encoding kept)."""
    raw = request.scope.get("raw_path")
    text = raw.decode("latin-1") if isinstance(raw, bytes) else request.url.path
    text = text.split("?", 1)[0]
    root = request.scope.get("root_path", "")
    if root and text.startswith(root):
        text = text[len(root) :]
    return text[len(PREFIX) :] or "/"


def _authenticate(
    request: Request, node: Node, target: RouteTarget, body: bytes, invoked: str
) -> Response | None:
    """None when the request may go on, else the response refusing it."""
    options, trigger_id = target.options, target.trigger.id
    if options.auth == "token":
        kind, _, token = request.headers.get("authorization", "").partition(" ")
        if kind.lower() != "bearer" or not token.strip():
            return message(401, "Unauthorized", {"WWW-Authenticate": 'Bearer realm="triggerfish"'})
        try:
            node.tokens.authorize(token.strip(), "invoke", invoked)
        except PermissionDeniedError:
            return message(403, "Forbidden")
        except AuthError:
            return message(401, "Unauthorized", {"WWW-Authenticate": 'Bearer realm="triggerfish"'})
    elif options.auth == "hmac":
        try:
            secret = node.control.functions.route_secret(trigger_id, options)
        except ConfigError as exc:
            log.error("route %s: %s", options.route, exc)
            return message(500, "Internal Server Error")
        given = request.headers.get(SIGNATURE_HEADER, "")
        if not secret or not given or not _signature_matches(secret, body, given):
            return message(401, "Invalid signature")
    return None


def gateway_event(
    request: Request,
    route: Route,
    params: dict[str, str],
    body: bytes,
    *,
    options: HttpOptions,
) -> dict[str, Any]:
    """The request as an API Gateway HTTP API payload 2.0 event."""
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for raw_name, raw_value in request.headers.raw:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        if name == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        if name == "authorization" and options.auth == "token":
            continue  # the API token stays with Triggerfish
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    source_ip = forward(headers, request.scope)
    raw_query = request.scope.get("query_string", b"").decode("latin-1")
    query: dict[str, str] = {}
    for key, value in parse_qsl(raw_query, keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value
    path = _route_path(request)
    now = time.time()
    host = headers.get("host", "localhost").split(":")[0]
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.key,
        "rawPath": path,
        "rawQueryString": raw_query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = headers
    if query:
        event["queryStringParameters"] = query
    event["requestContext"] = {
        "accountId": ACCOUNT_ID,
        "apiId": API_ID,
        "domainName": host,
        "domainPrefix": host.split(".")[0],
        "http": {
            "method": request.method,
            "path": path,
            "protocol": f"HTTP/{request.scope.get('http_version', '1.1')}",
            "sourceIp": source_ip,
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": new_id(),
        "routeKey": route.key,
        "stage": "$default",
        "time": _gateway_time(now),
        "timeEpoch": int(now * 1000),
    }
    if params:
        event["pathParameters"] = params
    if body:
        text = _as_text(body, headers.get("content-type"))
        event["body"] = text if text is not None else base64.b64encode(body).decode("ascii")
        event["isBase64Encoded"] = text is None
    else:
        event["isBase64Encoded"] = False
    return event


def _gateway_time(now: float) -> str:
    """API Gateway's ``12/Mar/2020:19:03:58 +0000``."""
    parts = formatdate(now, usegmt=True).split()  # "Thu, 12 Mar 2020 19:03:58 GMT"
    return f"{int(parts[1]):02d}/{parts[2]}/{parts[3]}:{parts[4]} +0000"


def _as_text(body: bytes, content_type: str | None) -> str | None:
    """The body as text when its type is textual (or not given) and it is UTF-8."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    textual = (
        not media
        or is_json_content_type(media)
        or is_text_content_type(media)
        or media in _TEXT_TYPES
        or media.endswith("+xml")
    )
    if not textual:
        return None
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


def function_response(result: InvocationResult) -> Response:
    """The HTTP response for an invocation's outcome, as Lambda function URLs map it."""
    if result.status == "timeout":
        return message(504, "Gateway Timeout")
    if result.status != "ok":
        log.info("function failed behind a route: %s: %s", result.error_type, result.error_message)
        return message(502, "Internal Server Error")
    raw = result.result or b"null"
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return message(502, "Internal Server Error")
    headers = {"x-triggerfish-invocation-id": result.request_id}
    if not (isinstance(value, dict) and "statusCode" in value):
        return Response(raw, status_code=200, media_type="application/json", headers=headers)
    try:
        return _structured(value, headers)
    except (TypeError, ValueError, binascii.Error) as exc:
        log.info("a function returned a response that cannot be sent: %s", exc)
        return message(502, "Internal Server Error")


def _structured(value: dict[str, Any], extra: dict[str, str]) -> Response:
    status = value.get("statusCode")
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise ValueError(f"statusCode must be an HTTP status, got {status!r}")
    body = value.get("body")
    content: bytes
    if body is None:
        content = b""
    elif isinstance(body, str):
        content = (
            base64.b64decode(body, validate=True)
            if value.get("isBase64Encoded")
            else (body.encode("utf-8"))
        )
    else:
        content = orjson.dumps(body)
    response = Response(content, status_code=status)
    given: set[str] = set()
    for name, raw in (value.get("headers") or {}).items():
        if name.lower() not in _SKIPPED_RESPONSE_HEADERS:
            response.headers.append(name, _header_text(raw))
            given.add(name.lower())
    for name, items in (value.get("multiValueHeaders") or {}).items():
        if name.lower() in _SKIPPED_RESPONSE_HEADERS or name.lower() in given:
            continue
        for item in items if isinstance(items, list) else [items]:
            response.headers.append(name, _header_text(item))
        given.add(name.lower())
    for cookie in value.get("cookies") or []:
        response.headers.append("set-cookie", str(cookie))
    if "content-type" not in given and content:
        response.headers["content-type"] = "application/json"
    for name, text in extra.items():
        response.headers[name] = text
    return response


def _header_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
