"""The ``cors:`` of an HTTP route, as API Gateway's HTTP API ``CorsConfiguration`` has it.

``cors: true`` is ``cors: {}``: any origin, the route's methods and the usual request
headers. A mapping names what it changes. The checks refuse what a browser would refuse
anyway (credentials for any origin), so a route never answers headers no browser honours.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from triggerfish.functions.fields import EXPECTED, PLAIN, StrictModel

CORS_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
# What a page sends beyond the headers every browser allows without asking.
COMMON_HEADERS = ("content-type", "authorization", "x-requested-with", "x-triggerfish-signature")
MAX_AGE_LIMIT = 86400


class CorsOptions(StrictModel):
    """Which pages of other origins may call a route, and what their scripts may read."""

    allow_origins: list[str] = Field(
        default_factory=lambda: ["*"],
        description='origins such as "https://shop.example.com", one "*" standing for any'
        ' run of characters ("https://*.example.com"), or "*" for any origin',
    )
    allow_methods: list[str] | None = Field(
        default=None,
        description='methods such as "GET", or "*"; by default the route\'s own',
    )
    allow_headers: list[str] = Field(
        default_factory=lambda: list(COMMON_HEADERS),
        description='request headers a page may send, or "*" for any',
    )
    expose_headers: list[str] = Field(
        default_factory=list, description="response headers a page's script may read"
    )
    max_age: int | None = Field(
        default=None,
        ge=0,
        le=MAX_AGE_LIMIT,
        description=f"seconds a browser may keep a preflight's answer, 0 to {MAX_AGE_LIMIT}",
    )
    allow_credentials: bool = Field(
        default=False, description="true to let pages send cookies and read the answer"
    )

    @field_validator("allow_origins")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        if not origins:
            raise PydanticCustomError(
                EXPECTED, 'expected at least one origin, or "*" for any origin'
            )
        for origin in origins:
            if origin == "*":
                continue
            scheme, sep, host = origin.partition("://")
            if not sep or not scheme or not host or "/" in host or origin.count("*") > 1:
                raise PydanticCustomError(
                    EXPECTED,
                    f'expected origins such as "https://shop.example.com" (a scheme and a'
                    f' host, no path; at most one "*"), or "*"; {origin!r} is not one',
                )
        return origins

    @field_validator("allow_methods")
    @classmethod
    def _methods(cls, methods: list[str] | None) -> list[str] | None:
        if methods is None:
            return None
        upper = [m.strip().upper() for m in methods]
        for method in upper:
            if method != "*" and method not in CORS_METHODS:
                raise PydanticCustomError(
                    EXPECTED,
                    f'expected methods among {", ".join(CORS_METHODS)}, or "*"; {method!r}'
                    " is not one",
                )
        return upper

    @field_validator("allow_headers", "expose_headers")
    @classmethod
    def _headers(cls, headers: list[str]) -> list[str]:
        for header in headers:
            if not header.strip() or header.count("*") > 1 or any(c in header for c in " ,:"):
                raise PydanticCustomError(
                    EXPECTED,
                    f'expected header names such as "content-type", or "*"; {header!r} is not one',
                )
        return [h.strip().lower() for h in headers]

    @model_validator(mode="after")
    def _credentials(self) -> CorsOptions:
        if self.allow_credentials and "*" in self.allow_origins:
            raise PydanticCustomError(
                PLAIN,
                "allow_credentials: true needs the origins named: browsers refuse credentials"
                ' from a route that allows any origin ("*"); list them in allow_origins',
            )
        return self


def cors_option(value: Any) -> Any:
    """``true`` as the defaults, ``false`` as none, a mapping as it is."""
    if value is True:
        return CorsOptions()
    if value is False:
        return None
    return value
