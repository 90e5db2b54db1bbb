"""Lambda's list operations' paging (``MaxItems`` and an opaque ``Marker``), and its
JSON replies."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from triggerfish.api.lambda_.errors import invalid_parameter

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
