"""The CORS of a Serverless service as the ``cors`` of its routes.

An ``http`` event's ``cors``: ``true``, or ``origin`` / ``origins``, ``headers``,
``methods``, ``allowCredentials`` and ``maxAge``. ``provider.httpApi.cors`` for every
``httpApi`` event: ``true``, or ``allowedOrigins``, ``allowedHeaders``,
``allowedMethods``, ``exposedResponseHeaders``, ``allowCredentials`` and ``maxAge``.
``true`` and a missing list take Serverless's defaults: any origin, the route's method
and the headers Serverless allows.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from triggerfish.errors import ConfigError

# Serverless's own list for ``cors: true``.
DEFAULT_HEADERS = [
    "Content-Type", "X-Amz-Date", "Authorization", "X-Api-Key", "X-Amz-Security-Token",
    "X-Amz-User-Agent", "X-Amzn-Trace-Id",
]  # fmt: skip
_REST_KEYS = {
    "headers": "allow_headers",
    "methods": "allow_methods",
}
_HTTP_API_KEYS = {
    "allowedOrigins": "allow_origins",
    "allowedHeaders": "allow_headers",
    "allowedMethods": "allow_methods",
    "exposedResponseHeaders": "expose_headers",
}

Report = Callable[[str, str, str], None]


def _list(value: Any, file: Path, where: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise ConfigError(f"{file}: {where}: expected a list")
    return [str(item) for item in value]


def _common(spec: dict[str, Any], cors: dict[str, Any], file: Path, where: str) -> None:
    if "allowCredentials" in spec:
        cors["allow_credentials"] = spec["allowCredentials"] is True
    if spec.get("maxAge") is not None:
        try:
            cors["max_age"] = int(spec["maxAge"])
        except (TypeError, ValueError):
            raise ConfigError(
                f"{file}: {where}.maxAge: expected seconds, got {spec['maxAge']!r}"
            ) from None


def _credentials(cors: dict[str, Any], where: str, report: Report) -> dict[str, Any]:
    if cors.get("allow_credentials") and "*" in cors.get("allow_origins", ["*"]):
        report(
            f"{where}.allowCredentials",
            "allowCredentials with any origin",
            "browsers refuse credentials from a route that allows any origin; the route"
            " allows any origin without credentials (name the origins to allow them)",
        )
        del cors["allow_credentials"]
    return cors


def http_event_cors(value: Any, file: Path, where: str, report: Report) -> dict[str, Any] | None:
    """The ``cors`` of the route of an ``http`` event, from its ``cors``."""
    if value is False or value is None:
        return None
    if value is True:
        return {"allow_headers": list(DEFAULT_HEADERS)}
    if not isinstance(value, dict):
        raise ConfigError(f"{file}: {where}: expected true or a mapping")
    cors: dict[str, Any] = {"allow_headers": list(DEFAULT_HEADERS)}
    origins = value.get("origins", value.get("origin"))
    if origins is not None:
        cors["allow_origins"] = _list(origins, file, f"{where}.origins")
    for key, field in _REST_KEYS.items():
        if key in value:
            cors[field] = _list(value[key], file, f"{where}.{key}")
    _common(value, cors, file, where)
    for key in sorted(
        set(value) - {"origin", "origins", "allowCredentials", "maxAge", *_REST_KEYS}
    ):
        report(f"{where}.{key}", "cors setting", "not carried out by Triggerfish")
    return _credentials(cors, where, report)


def http_api_cors(value: Any, file: Path, where: str, report: Report) -> dict[str, Any] | None:
    """The ``cors`` of every ``httpApi`` route, from ``provider.httpApi.cors``."""
    if value is False or value is None:
        return None
    if value is True:
        return {"allow_headers": list(DEFAULT_HEADERS)}
    if not isinstance(value, dict):
        raise ConfigError(f"{file}: {where}: expected true or a mapping")
    cors: dict[str, Any] = {"allow_headers": list(DEFAULT_HEADERS)}
    for key, field in _HTTP_API_KEYS.items():
        if key in value:
            cors[field] = _list(value[key], file, f"{where}.{key}")
    _common(value, cors, file, where)
    for key in sorted(set(value) - {"allowCredentials", "maxAge", *_HTTP_API_KEYS}):
        report(f"{where}.{key}", "cors setting", "not carried out by Triggerfish")
    return _credentials(cors, where, report)
