"""The one-write responses of the fast path (``api.protocol``)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from uvicorn.protocols.http.httptools_impl import STATUS_LINE

from triggerfish.api.protocol import _response
from triggerfish.api.raw import Reply


def cycle(*, keep_alive: bool = True) -> SimpleNamespace:
    return SimpleNamespace(
        default_headers=[(b"date", b"Fri, 27 Nov 2026 10:00:00 GMT"), (b"server", b"uvicorn")],
        keep_alive=keep_alive,
    )


def test_a_reply_is_one_http_response_with_length_type_and_the_servers_headers() -> None:
    reply = Reply(200, b'{"ok":true}', [(b"x-triggerfish-status", b"ok")])
    assert _response(cycle(), reply, STATUS_LINE) == (
        b"HTTP/1.1 200 OK\r\n"
        b"date: Fri, 27 Nov 2026 10:00:00 GMT\r\n"
        b"server: uvicorn\r\n"
        b"x-triggerfish-status: ok\r\n"
        b"content-length: 11\r\n"
        b"content-type: application/json\r\n"
        b"\r\n"
        b'{"ok":true}'
    )


def test_a_closing_connection_says_so() -> None:
    response = _response(cycle(keep_alive=False), Reply(202, b"{}"), STATUS_LINE)
    assert response.startswith(b"HTTP/1.1 202 Accepted\r\n")
    assert b"\r\nconnection: close\r\n\r\n{}" in response


@pytest.mark.parametrize("value", [b"ok\r\nset-cookie: x=1", b"ok\nx", b"ok\x00"])
def test_a_header_value_that_could_forge_headers_is_refused(value: bytes) -> None:
    with pytest.raises(ValueError, match="control character"):
        _response(cycle(), Reply(200, b"", [(b"x-triggerfish-status", value)]), STATUS_LINE)
