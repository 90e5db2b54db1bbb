"""HTTP routes of ``http:`` triggers: reading ``"POST /orders/{id}"``, matching a request
path against every route, and signing bodies. No I/O; the ASGI side is
``triggerfish.api.http_routes``.

A route is a method (``GET``, ``POST`` ..., or ``ANY``) and a path of literal segments,
``{name}`` parameters (one segment each) and, last, one greedy ``{name+}`` (one segment
or more). ``$default`` answers what no other route does. When several routes match,
the most specific wins, as API Gateway chooses: segment by segment a literal beats a
parameter, which beats a greedy parameter; then a named method beats ``ANY``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import unquote

from pydantic import ValidationError as PydanticValidationError

from triggerfish.errors import ConfigError
from triggerfish.functions.triggers import HttpOptions
from triggerfish.sources.base import SourceContext

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY")
DEFAULT_ROUTE = "$default"
_PARAM_RE = re.compile(r"^\{([A-Za-z0-9_.-]+)(\+?)\}$")
_LITERAL, _PARAM, _GREEDY = 0, 1, 2
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Route:
    key: str  # the route as written, normalised: "POST /orders/{id}"
    method: str  # upper case, or ANY
    segments: tuple[tuple[int, str], ...]  # (kind, literal text or parameter name)

    @property
    def rank(self) -> tuple[int, ...]:
        """Smaller is more specific."""
        if self.key == DEFAULT_ROUTE:
            return (9,)
        return (*(kind for kind, _ in self.segments), 3, int(self.method == "ANY"))

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """The path parameters when the request matches (decoded), else None."""
        if self.key == DEFAULT_ROUTE:
            return {}
        if self.method not in ("ANY", method.upper()):
            return None
        parts = _split(path)
        params: dict[str, str] = {}
        for index, (kind, text) in enumerate(self.segments):
            if kind == _GREEDY:
                rest = parts[index:]
                if not rest:
                    return None
                params[text] = unquote("/".join(rest))
                return params
            if index >= len(parts):
                return None
            if kind == _LITERAL:
                if unquote(parts[index]) != text:
                    return None
            else:
                if not parts[index]:
                    return None
                params[text] = unquote(parts[index])
        return params if len(parts) == len(self.segments) else None


def _split(path: str) -> list[str]:
    trimmed = path.strip("/")
    return trimmed.split("/") if trimmed else []


def parse_route(text: str) -> Route:
    """``"POST /orders/{id}"``; ConfigError saying what is wrong."""
    text = text.strip()
    if text == DEFAULT_ROUTE:
        return Route(DEFAULT_ROUTE, "ANY", ())
    method, _, path = text.partition(" ")
    method = method.upper()
    path = path.strip()
    if method not in METHODS or not path.startswith("/"):
        raise ConfigError(
            f"route {text!r}: expected 'METHOD /path' with METHOD one of {', '.join(METHODS)} "
            "(for example 'POST /orders/{id}'), or '$default'"
        )
    segments: list[tuple[int, str]] = []
    names: set[str] = set()
    parts = _split(path)
    for index, part in enumerate(parts):
        if "{" in part or "}" in part:
            match = _PARAM_RE.match(part)
            if match is None:
                raise ConfigError(
                    f"route {text!r}: {part!r} must be a whole segment such as {{id}} or {{proxy+}}"
                )
            name, greedy = match.group(1), bool(match.group(2))
            if greedy and index != len(parts) - 1:
                raise ConfigError(f"route {text!r}: a greedy parameter {part} must come last")
            if name in names:
                raise ConfigError(f"route {text!r}: the parameter {name!r} appears twice")
            names.add(name)
            segments.append((_GREEDY if greedy else _PARAM, name))
        elif not part:
            raise ConfigError(f"route {text!r}: empty path segment")
        else:
            segments.append((_LITERAL, part))
    return Route(f"{method} /{'/'.join(p for p in parts)}", method, tuple(segments))


def best_route(
    candidates: Sequence[tuple[Route, T]], method: str, path: str
) -> tuple[Route, T, dict[str, str]] | None:
    """The most specific route matching the request, with its value and parameters."""
    found: tuple[Route, T, dict[str, str]] | None = None
    for route, value in candidates:
        params = route.match(method, path)
        if params is not None and (found is None or route.rank < found[0].rank):
            found = (route, value, params)
    return found


def resolve_secret(value: str, environ: Mapping[str, str] | None = None) -> str:
    """A secret as configured: ``env:NAME`` reads the server's environment variable NAME
    (ConfigError when it is not set), anything else is the secret itself."""
    if value.startswith("env:"):
        name = value[4:]
        found = (os.environ if environ is None else environ).get(name)
        if not found:
            raise ConfigError(f"the secret is read from ${name}, which is not set on the server")
        return found
    return value


def sign(secret: str, payload: bytes) -> str:
    """HMAC-SHA256 of ``payload`` with ``secret``, in lowercase hex."""
    return hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


def signature_matches(secret: str, payload: bytes, given: str) -> bool:
    """Constant-time check of a hex signature (a ``sha256=`` prefix is allowed)."""
    given = given.strip().removeprefix("sha256=").lower()
    return hmac.compare_digest(sign(secret, payload), given)


class HttpRouteKind:
    """The ``http`` trigger source. Routes are answered by the API, not by a running
    source: this only checks a route's options at deploy."""

    name = "http"

    def validate(self, options: Mapping[str, Any], *, where: str) -> None:
        try:
            config = HttpOptions.model_validate(dict(options))
        except PydanticValidationError as exc:
            raise ConfigError(f"{where}: {exc.errors()[0]['msg']}") from None
        try:
            parse_route(config.route)
        except ConfigError as exc:
            raise ConfigError(f"{where}.route: {exc}") from None
        if config.auth == "hmac" and not config.secret:
            raise ConfigError(
                f"{where}.secret: auth 'hmac' needs a secret (or env:NAME to read it from the "
                "server's environment)"
            )

    def create(self, context: SourceContext) -> None:
        return None
