"""The ``X-Forwarded-*`` headers an HTTP route's function sees, as API Gateway sets them.

API Gateway is a proxy: it appends the address of whoever connected to it to
``X-Forwarded-For`` (creating the header when the request had none), and sets
``X-Forwarded-Proto`` and ``X-Forwarded-Port`` to the scheme and port the request came
in on; ``sourceIp`` is that same address. Triggerfish does the same with the client
the server saw. When Triggerfish itself sits behind a proxy the server trusts (uvicorn
trusts 127.0.0.1 by default: ``FORWARDED_ALLOW_IPS``), the server already took the
client's address from that proxy's ``X-Forwarded-For``, whose last entry it then is:
the chain, the scheme and the port that proxy sent are kept as they are.
"""

from __future__ import annotations

from starlette.types import Scope

DEFAULT_PORTS = {"http": 80, "https": 443}


def forward(headers: dict[str, str], scope: Scope) -> str:
    """Set the ``x-forwarded-*`` entries of ``headers`` (lowercase names) for a request
    of ``scope``; the client's address (``sourceIp``)."""
    client = scope.get("client")
    address = str(client[0]) if client else ""
    carried = headers.get("x-forwarded-for", "")
    chain = [part.strip() for part in carried.split(",") if part.strip()]
    proxied = bool(chain) and chain[-1] == address
    if not proxied and address:
        chain.append(address)
    if chain:
        headers["x-forwarded-for"] = ", ".join(chain)
    scheme = str(scope.get("scheme", "http"))
    if not (proxied and headers.get("x-forwarded-proto")):
        headers["x-forwarded-proto"] = scheme
    if not (proxied and headers.get("x-forwarded-port")):
        server = scope.get("server")
        port = server[1] if server and server[1] else DEFAULT_PORTS.get(scheme, 80)
        headers["x-forwarded-port"] = str(port)
    return address
