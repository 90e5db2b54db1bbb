"""The HTTP/1.1 protocol ``triggerfish up`` serves with: uvicorn's ``httptools``
protocol, with the hot paths answered in the connection itself.

For a request ``FastPath.route`` names (the invoke operations and event ingest), the
protocol runs ``FastPath.answer`` in place of the ASGI application and writes the reply
as one HTTP/1.1 response in one write, with uvicorn's default headers (``date``,
``server``). The request still goes through uvicorn's parser, its body through the same
``receive`` (size limits, ``Expect: 100-continue``, a client that leaves), and the
connection through the same keep-alive, pipelining and flow control: only the ASGI
application, its middleware and the two ``send`` messages are left out, which is about
a tenth of the server's work per call. A request the fast path declines (``answer``
gives None) goes to the application as any other.

The protocol relies on parts of uvicorn's ``RequestResponseCycle`` that are not its
public interface; ``hot_path_protocol`` checks them once and gives uvicorn's own
protocol when a version of uvicorn lacks one, so the server then works as before, only
slower.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from triggerfish.api.raw import Disconnected, Reply

if TYPE_CHECKING:
    from triggerfish.api.fastpath import FastPath, Route

log = logging.getLogger("triggerfish.api")

_CYCLE_ATTRIBUTES = (
    "scope",
    "transport",
    "default_headers",
    "keep_alive",
    "disconnected",
    "response_started",
    "response_complete",
    "message_event",
    "on_response",
    "receive",
    "run_asgi",
    "waiting_for_100_continue",
    "more_body",
    "body",
)
#: Scope extension (and cycle attribute) of an ``Expect: 100-continue`` request whose
#: body was not asked for yet (``_watch_continue``).
CONTINUE_UNSENT = "triggerfish.continue_unsent"
INTERNAL_ERROR = Reply(500, b"Internal Server Error", media_type=b"text/plain; charset=utf-8")


def hot_path_protocol(fast: FastPath) -> type[Any] | str:
    """The protocol class for ``uvicorn.Config(http=...)``: uvicorn's ``httptools``
    protocol with ``fast``'s requests answered in place; ``"httptools"`` or ``"h11"``
    (uvicorn's own) when this uvicorn's protocol is not the one this module knows."""
    try:
        import httptools
        from uvicorn.protocols.http.httptools_impl import (
            STATUS_LINE,
            HttpToolsProtocol,
            RequestResponseCycle,
        )
    except ImportError:  # no httptools on this platform
        return "h11"
    cycle_init = RequestResponseCycle.__init__.__code__.co_names
    known = hasattr(HttpToolsProtocol, "_start_asgi_task") and all(
        name in cycle_init or hasattr(RequestResponseCycle, name) for name in _CYCLE_ATTRIBUTES
    )
    if not known:  # pragma: no cover - another uvicorn
        log.warning("uvicorn %s is not known to the invoke fast path; serving without it", _v())
        return "httptools"

    class HotPathProtocol(HttpToolsProtocol):
        def _start_asgi_task(self, cycle: Any, app: Any) -> None:
            if cycle.waiting_for_100_continue:
                _watch_continue(cycle)
            route = fast.route(cycle.scope) if app is self.app else None
            if route is None:
                super()._start_asgi_task(cycle, app)
                return
            task = self.loop.create_task(_serve(cycle, app, route))
            task.add_done_callback(self.tasks.discard)
            self.tasks.add(task)

        def on_response_complete(self) -> None:
            cycle = self.cycle
            if (
                cycle is not None
                and cycle.more_body  # false for nearly every request: one look
                and cycle.keep_alive
                and not cycle.body
                and getattr(cycle, CONTINUE_UNSENT, False)
            ):
                # Answered before asking for the body of an ``Expect: 100-continue``
                # request: the client never got its 100 Continue and sends no body, so
                # the parser must not wait for one; the next bytes are a new request.
                self.parser = httptools.HttpRequestParser(self)
            super().on_response_complete()

    async def _serve(cycle: Any, app: Any, route: Route) -> None:
        try:
            reply = await fast.answer(cycle.scope, cycle.receive, route)
        except Disconnected:
            return
        except Exception:
            log.exception("answering %s failed", cycle.scope["path"])
            reply = INTERNAL_ERROR
        if reply is None:
            await cycle.run_asgi(app)
            return
        if reply.close:  # a refused body is left unread: the connection ends with it
            cycle.keep_alive = False
        try:
            response = _response(cycle, reply, STATUS_LINE)
        except ValueError:
            log.exception("answering %s failed", cycle.scope["path"])
            response = _response(cycle, INTERNAL_ERROR, STATUS_LINE)
        _finish(cycle, response)

    return HotPathProtocol


def _watch_continue(cycle: Any) -> None:
    """Mark ``cycle`` (an ``Expect: 100-continue`` request) as one whose body will not
    come unless its ``receive`` is called: the scope's extension ``CONTINUE_UNSENT``
    tells the application that answering without reading the body leaves the connection
    usable."""
    setattr(cycle, CONTINUE_UNSENT, True)
    cycle.scope.setdefault("extensions", {})[CONTINUE_UNSENT] = {}
    receive = cycle.receive

    async def asked() -> Any:
        setattr(cycle, CONTINUE_UNSENT, False)
        return await receive()

    cycle.receive = asked


def _response(cycle: Any, reply: Reply, status_lines: dict[int, bytes]) -> bytes:
    """``reply`` as the whole HTTP/1.1 response of ``cycle``; ValueError when a header
    value of the reply holds a line break or a NUL (it could forge headers)."""
    headers = reply.all_headers()
    lines = b"".join([b"%s: %s\r\n" % header for header in headers])
    # Each line ends in the one CR LF it was given: any other is inside a value.
    if lines.count(b"\n") != len(headers) or lines.count(b"\r") != len(headers):
        raise ValueError("a header value of the reply holds a control character")
    if b"\x00" in lines:
        raise ValueError("a header value of the reply holds a control character")
    parts = [status_lines[reply.status]]
    for name, value in cycle.default_headers:
        parts += (name, b": ", value, b"\r\n")
    parts.append(lines)
    if not cycle.keep_alive:
        parts.append(b"connection: close\r\n")
    parts += (b"\r\n", reply.body)
    return b"".join(parts)


def _finish(cycle: Any, response: bytes) -> None:
    """Write ``response`` and end ``cycle`` as uvicorn's ``send`` does: the connection
    then reads its next request, or closes."""
    if cycle.disconnected:
        return
    cycle.response_started = True
    cycle.waiting_for_100_continue = False
    cycle.transport.write(response)
    cycle.response_complete = True
    cycle.message_event.set()
    if not cycle.keep_alive:
        cycle.transport.close()
    on_response, cycle.on_response = cycle.on_response, _nothing
    on_response()


def _nothing() -> None:
    return None


def _v() -> str:  # pragma: no cover - another uvicorn
    from uvicorn import __version__

    return __version__
