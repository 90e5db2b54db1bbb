"""Serves the web console: ``/`` (the page) and ``/console/<asset>`` (its script and
style), committed files read from the package once.

The console is a client of the public ``/v1`` API, like the CLI: it sends the token a
person signs in with (kept in the tab's ``sessionStorage``) as a bearer token, so the
API checks every read and every change as it checks any other client's, and no cookie
is involved (nothing for another site to ride on). Its pages are drawn in the browser
from the API's JSON; the Content-Security-Policy allows scripts and styles from this
server only.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import Response

from triggerfish.errors import NotFoundError

ASSETS = {
    "console.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
}
HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
}


def _read(name: str) -> bytes:
    return (files("triggerfish.console") / "static" / name).read_bytes()


def create_router() -> APIRouter:
    page = _read("index.html")
    assets = {name: _read(name) for name in ASSETS}
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    async def console_page() -> Response:
        return Response(page, media_type="text/html; charset=utf-8", headers=HEADERS)

    @router.get("/console/{name}")
    async def console_asset(name: str) -> Response:
        if name not in assets:
            raise NotFoundError(f"the console has no file {name!r}")
        return Response(assets[name], media_type=ASSETS[name], headers=HEADERS)

    return router
