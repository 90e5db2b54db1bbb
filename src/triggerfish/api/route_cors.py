"""CORS for HTTP routes, as API Gateway's HTTP API does it for a route with ``cors``.

A browser's preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``)
on a path whose route for the asked method has ``cors`` is answered here, without
invoking the function: 204 with the ``Access-Control-*`` headers when the origin, the
method and every asked header are allowed, 403 otherwise. A preflight for a method that
no route of the path serves, when another route of the path has ``cors``, is a 403 too;
one that no CORS route concerns goes on to the routes (an ``OPTIONS`` route may answer
it itself). Any other answer of a route with ``cors`` to a request with an allowed
``Origin`` carries ``Access-Control-Allow-Origin`` (and the exposed headers and
credentials); the function's own ``Access-Control-*`` headers are replaced, as API
Gateway ignores them once CORS is configured. Origins and headers are matched as the
buckets' CORS rules match them (``api.s3.cors``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from starlette.responses import Response

from triggerfish.api.s3.cors import CorsRule
from triggerfish.functions.cors import CORS_METHODS, CorsOptions
from triggerfish.sources.routes import Route, best_route

if TYPE_CHECKING:
    from triggerfish.api.http_routes import RouteTarget

VARY = "Origin"


def _rule(cors: CorsOptions, route: Route) -> CorsRule:
    if cors.allow_methods is not None:
        methods = cors.allow_methods
    elif route.method == "ANY":
        methods = ["*"]
    else:
        methods = [route.method]
    if "*" in methods:
        methods = list(CORS_METHODS)
    return CorsRule(
        origins=tuple(cors.allow_origins),
        methods=tuple(methods),
        headers=tuple(cors.allow_headers),
        expose=tuple(cors.expose_headers),
        max_age=cors.max_age,
    )


def _origin_headers(cors: CorsOptions, pattern: str, origin: str) -> dict[str, str]:
    headers = {"access-control-allow-origin": "*" if pattern == "*" else origin}
    if cors.allow_credentials:
        headers["access-control-allow-credentials"] = "true"
    return headers


def _refused(text: str) -> Response:
    return Response(
        f'{{"message": "{text}"}}',
        status_code=403,
        media_type="application/json",
        headers={"vary": VARY},
    )


def preflight(
    entries: Sequence[tuple[Route, RouteTarget]], path: str, headers: Mapping[str, str]
) -> Response | None:
    """The answer to a preflight on ``path``, or None when no CORS route concerns it."""
    origin = headers.get("origin")
    asked_method = (headers.get("access-control-request-method") or "").strip().upper()
    if not origin or not asked_method:
        return None
    found = best_route(entries, asked_method, path)
    if found is None or found[1].options.cors is None:
        if best_route(entries, "OPTIONS", path) is not None:
            return None  # the route serving OPTIONS answers the preflight itself
        cors_here = any(
            target.options.cors is not None
            and route.match(asked_method if route.method == "ANY" else route.method, path)
            is not None
            for route, target in entries
        )
        return _refused("CORS: the method is not allowed") if cors_here else None
    route, target, _ = found
    cors = target.options.cors
    assert cors is not None
    rule = _rule(cors, route)
    pattern = rule.origin_matches(origin)
    if pattern is None:
        return _refused("CORS: the origin is not allowed")
    if asked_method not in rule.methods:
        return _refused("CORS: the method is not allowed")
    asked_text = headers.get("access-control-request-headers", "")
    asked = [h.strip().lower() for h in asked_text.split(",") if h.strip()]
    if not rule.headers_allowed(asked):
        return _refused("CORS: a request header is not allowed")
    answer = _origin_headers(cors, pattern, origin)
    answer["access-control-allow-methods"] = ", ".join(rule.methods)
    if asked:
        answer["access-control-allow-headers"] = ", ".join(asked)
    if cors.max_age is not None:
        answer["access-control-max-age"] = str(cors.max_age)
    answer["vary"] = VARY
    return Response(status_code=204, headers=answer)


def decorate(
    cors: CorsOptions, route: Route, request_headers: Mapping[str, str], response: Response
) -> None:
    """Give a route's answer the CORS headers its request's ``Origin`` is allowed."""
    for name in [n for n in response.headers if n.lower().startswith("access-control-")]:
        del response.headers[name]
    vary = response.headers.get("vary")
    if not vary:
        response.headers["vary"] = VARY
    elif VARY.lower() not in vary.lower():
        response.headers["vary"] = f"{vary}, {VARY}"
    origin = request_headers.get("origin")
    if not origin:
        return
    pattern = _rule(cors, route).origin_matches(origin)
    if pattern is None:
        return
    response.headers.update(_origin_headers(cors, pattern, origin))
    if cors.expose_headers:
        response.headers["access-control-expose-headers"] = ", ".join(cors.expose_headers)
