"""The CORS of a SAM template's APIs as the ``cors`` of the routes on them.

An ``Api`` event takes the ``Cors`` of the ``AWS::Serverless::Api`` its ``RestApiId``
names, else ``Globals.Api.Cors``: a quoted origin (``"'*'"``), or ``AllowOrigin``,
``AllowMethods`` and ``AllowHeaders`` (quoted, comma-separated), ``MaxAge`` and
``AllowCredentials``. An ``HttpApi`` event takes the ``CorsConfiguration`` of the
``AWS::Serverless::HttpApi`` its ``ApiId`` names, else ``Globals.HttpApi``'s: ``true``,
or ``AllowOrigins``, ``AllowMethods``, ``AllowHeaders``, ``ExposeHeaders``, ``MaxAge``
and ``AllowCredentials``. What a key leaves unsaid takes the route's defaults.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from triggerfish.errors import ConfigError
from triggerfish.functions.templates.common import Unsupported

if TYPE_CHECKING:
    from triggerfish.functions.templates.sam import SamTemplate

_KEYS = {"Api": "Cors", "HttpApi": "CorsConfiguration"}
_RESOURCES = {"Api": "AWS::Serverless::Api", "HttpApi": "AWS::Serverless::HttpApi"}


def api_cors(template: SamTemplate, kind: str, api_id: Any) -> dict[str, Any] | None:
    """The ``cors`` of a route of an ``Api`` or ``HttpApi`` event, or None."""
    key = _KEYS[kind]
    resource = template.resources.get(str(api_id)) if api_id else None
    spec, where = None, ""
    if resource is not None and resource.get("Type") == _RESOURCES[kind]:
        props = resource.get("Properties") or {}
        spec, where = props.get(key), f"Resources.{api_id}.Properties.{key}"
    if spec is None:
        spec = ((template.document.get("Globals") or {}).get(kind) or {}).get(key)
        where = f"Globals.{kind}.{key}"
    if spec is None or spec is False:
        return None
    spec = template.resolve(spec, where)
    cors = _rest(spec, template, where) if kind == "Api" else _http(spec, template, where)
    if cors.get("allow_credentials") and "*" in cors.get("allow_origins", ["*"]):
        if not any(u.where == f"{where}.AllowCredentials" for u in template.unsupported):
            template.unsupported.append(
                Unsupported(
                    f"{where}.AllowCredentials", "AllowCredentials with any origin",
                    "browsers refuse credentials from a route that allows any origin;"
                    " the routes allow any origin without credentials (name the origins"
                    " to allow them)",
                )
            )  # fmt: skip
        del cors["allow_credentials"]
    return cors


def _unquote(value: Any) -> str:
    """SAM's ``"'text'"``: the single quotes API Gateway's header mapping needs, dropped."""
    text = str(value).strip()
    if len(text) >= 2 and text[0] == text[-1] == "'":
        text = text[1:-1]
    return text.strip()


def _items(value: Any) -> list[str]:
    return [part.strip() for part in _unquote(value).split(",") if part.strip()]


def _rest(spec: Any, template: SamTemplate, where: str) -> dict[str, Any]:
    if isinstance(spec, str):
        return {"allow_origins": [_unquote(spec)]}
    if not isinstance(spec, dict):
        raise ConfigError(f"{template.file}: {where}: expected a quoted origin or a mapping")
    cors: dict[str, Any] = {}
    if "AllowOrigin" in spec:
        cors["allow_origins"] = [_unquote(spec["AllowOrigin"])]
    if "AllowMethods" in spec:
        cors["allow_methods"] = _items(spec["AllowMethods"])
    if "AllowHeaders" in spec:
        cors["allow_headers"] = _items(spec["AllowHeaders"])
    if "MaxAge" in spec:
        cors["max_age"] = _number(spec["MaxAge"], template, f"{where}.MaxAge")
    if "AllowCredentials" in spec:
        cors["allow_credentials"] = spec["AllowCredentials"] in (True, "true", "'true'")
    return cors


def _http(spec: Any, template: SamTemplate, where: str) -> dict[str, Any]:
    if spec is True:
        return {}
    if not isinstance(spec, dict):
        raise ConfigError(f"{template.file}: {where}: expected true or a mapping")
    cors: dict[str, Any] = {}
    for key, field in (
        ("AllowOrigins", "allow_origins"),
        ("AllowMethods", "allow_methods"),
        ("AllowHeaders", "allow_headers"),
        ("ExposeHeaders", "expose_headers"),
    ):
        if key in spec:
            value = spec[key]
            cors[field] = [str(v) for v in value] if isinstance(value, list) else _items(value)
    if "MaxAge" in spec:
        cors["max_age"] = _number(spec["MaxAge"], template, f"{where}.MaxAge")
    if "AllowCredentials" in spec:
        cors["allow_credentials"] = spec["AllowCredentials"] in (True, "true")
    return cors


def _number(value: Any, template: SamTemplate, where: str) -> int:
    text = _unquote(value)
    if not text.isdigit():
        raise ConfigError(f"{template.file}: {where}: expected a number of seconds, got {value!r}")
    return int(text)
