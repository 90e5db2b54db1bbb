"""Preflights and CORS headers of HTTP routes, decided from the route table alone."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from triggerfish.api.http_routes import RouteTarget
from triggerfish.api.route_cors import decorate, preflight
from triggerfish.functions.triggers import HttpOptions
from triggerfish.sources.routes import Route, parse_route
from triggerfish.store.records import TriggerRecord

SHOP = "https://shop.example.com"


def table(*routes: tuple[str, Any]) -> list[tuple[Route, RouteTarget]]:
    entries = []
    for index, (route, cors) in enumerate(routes):
        options = HttpOptions.model_validate({"route": route, "cors": cors})
        trigger = TriggerRecord(f"api.r{index}", "api", "", config={"http": options.model_dump()})
        entries.append((parse_route(route), RouteTarget(trigger, options)))
    return entries


def ask(
    entries: list[tuple[Route, RouteTarget]],
    path: str,
    method: str,
    origin: str = SHOP,
    headers: str = "",
) -> Response | None:
    sent = {"origin": origin, "access-control-request-method": method}
    if headers:
        sent["access-control-request-headers"] = headers
    return preflight(entries, path, sent)


ROUTES = table(
    ("GET /items/{id}", True),
    ("POST /orders", {"allow_origins": [SHOP, "https://*.example.org"], "max_age": 600,
                      "allow_credentials": True, "allow_headers": ["content-type", "x-*"]}),
    ("GET /plain", None),
    ("OPTIONS /own", None),
)  # fmt: skip


def test_an_allowed_preflight_is_answered_with_the_routes_headers() -> None:
    answer = ask(ROUTES, "/orders", "POST", headers="Content-Type, X-Shop-Key")
    assert answer is not None
    assert answer.status_code == 204
    assert answer.headers["access-control-allow-origin"] == SHOP
    assert answer.headers["access-control-allow-methods"] == "POST"
    assert answer.headers["access-control-allow-headers"] == "content-type, x-shop-key"
    assert answer.headers["access-control-allow-credentials"] == "true"
    assert answer.headers["access-control-max-age"] == "600"
    assert answer.headers["vary"] == "Origin"
    wildcard = ask(ROUTES, "/orders", "POST", origin="https://eu.example.org")
    assert wildcard is not None
    assert wildcard.status_code == 204


def test_any_origin_is_answered_with_a_star() -> None:
    answer = ask(ROUTES, "/items/7", "GET", origin="http://localhost:3000")
    assert answer is not None
    assert answer.status_code == 204
    assert answer.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in answer.headers


def test_refused_origins_methods_and_headers_are_403() -> None:
    for refused in (
        ask(ROUTES, "/orders", "POST", origin="https://evil.example.com"),
        ask(ROUTES, "/orders", "POST", headers="authorization"),
        ask(ROUTES, "/orders", "DELETE"),  # no route for DELETE, a CORS route on the path
        ask(ROUTES, "/items/7", "PUT"),
    ):
        assert refused is not None
        assert refused.status_code == 403
        assert "access-control-allow-origin" not in refused.headers


def test_preflights_no_cors_route_concerns_go_on_to_the_routes() -> None:
    assert ask(ROUTES, "/plain", "GET") is None  # the route's answer: 404 for OPTIONS
    assert ask(ROUTES, "/own", "PUT") is None  # its OPTIONS route answers it
    assert ask(ROUTES, "/nowhere", "GET") is None
    assert preflight(ROUTES, "/orders", {"origin": SHOP}) is None  # not a preflight


def test_answers_get_the_origin_headers_and_lose_the_functions_own() -> None:
    route, target = ROUTES[1]
    assert target.options.cors is not None
    answer = Response(headers={"Access-Control-Allow-Origin": "*", "Vary": "Accept"})
    decorate(target.options.cors, route, {"origin": SHOP}, answer)
    assert answer.headers["access-control-allow-origin"] == SHOP
    assert answer.headers["access-control-allow-credentials"] == "true"
    assert answer.headers["vary"] == "Accept, Origin"

    refused = Response(headers={"Access-Control-Allow-Origin": "*"})
    decorate(target.options.cors, route, {"origin": "https://evil.example.com"}, refused)
    assert not [name for name in refused.headers if name.startswith("access-control-")]
