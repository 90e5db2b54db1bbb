"""HTTP routes: reading, matching and choosing the most specific route."""

from __future__ import annotations

import pytest

from triggerfish.errors import ConfigError
from triggerfish.sources.routes import HttpRouteKind, best_route, parse_route, resolve_secret

ROUTES = [
    "GET /orders",
    "POST /orders/{id}",
    "ANY /orders/{id}",
    "GET /orders/special",
    "GET /files/{path+}",
    "ANY /{proxy+}",
    "$default",
]


@pytest.mark.parametrize(
    ("method", "path", "route", "params"),
    [
        ("GET", "/orders", "GET /orders", {}),
        ("GET", "/orders/", "GET /orders", {}),
        ("POST", "/orders/42", "POST /orders/{id}", {"id": "42"}),
        ("DELETE", "/orders/42", "ANY /orders/{id}", {"id": "42"}),
        ("GET", "/orders/special", "GET /orders/special", {}),
        ("GET", "/orders/a%20b", "ANY /orders/{id}", {"id": "a b"}),
        ("GET", "/files/a/b/c.txt", "GET /files/{path+}", {"path": "a/b/c.txt"}),
        ("GET", "/files", "ANY /{proxy+}", {"proxy": "files"}),
        ("PUT", "/x/y", "ANY /{proxy+}", {"proxy": "x/y"}),
        ("GET", "/", "$default", {}),
    ],
)
def test_the_most_specific_route_wins(
    method: str, path: str, route: str, params: dict[str, str]
) -> None:
    candidates = [(parse_route(text), text) for text in ROUTES]
    found = best_route(candidates, method, path)
    assert found is not None
    assert (found[1], found[2]) == (route, params)


def test_no_match_without_a_catch_all() -> None:
    candidates = [(parse_route("POST /orders/{id}"), "x")]
    assert best_route(candidates, "GET", "/orders/1") is None
    assert best_route(candidates, "POST", "/orders") is None
    assert best_route(candidates, "POST", "/orders/1/items") is None


def test_route_keys_are_normalised() -> None:
    assert parse_route("post /orders/{id}/").key == "POST /orders/{id}"


@pytest.mark.parametrize(
    ("route", "message"),
    [
        ("FETCH /x", "METHOD /path"),
        ("GET orders", "METHOD /path"),
        ("GET /a/{proxy+}/b", "must come last"),
        ("GET /a/x{id}", "whole segment"),
        ("GET /a/{id}/{id}", "appears twice"),
        ("GET /a//b", "empty path segment"),
    ],
)
def test_bad_routes_say_what_is_wrong(route: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_route(route)


def test_hmac_routes_need_a_secret_at_deploy() -> None:
    kind = HttpRouteKind()
    with pytest.raises(ConfigError, match=r"triggers\[0\]\.http\.secret: auth 'hmac' needs"):
        kind.validate({"route": "POST /x", "auth": "hmac"}, where="triggers[0].http")
    with pytest.raises(ConfigError, match=r"triggers\[0\]\.http\.route: route 'GET x'"):
        kind.validate({"route": "GET x"}, where="triggers[0].http")
    kind.validate({"route": "POST /x", "auth": "hmac", "secret": "env:KEY"}, where="t")


def test_secrets_from_the_environment() -> None:
    assert resolve_secret("env:HOOK_KEY", {"HOOK_KEY": "s3cret"}) == "s3cret"
    assert resolve_secret("plain-secret", {}) == "plain-secret"
    with pytest.raises(ConfigError, match=r"\$HOOK_KEY, which is not set"):
        resolve_secret("env:HOOK_KEY", {})
