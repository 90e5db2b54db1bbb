"""The trace header of an invocation, in AWS X-Ray's form, as Lambda sets
``_X_AMZN_TRACE_ID``: ``Root=1-<8 hex: seconds>-<24 hex>;Parent=<16 hex>;Sampled=0|1``.

Every invocation gets one. An event that carries a W3C ``traceparent``
(``00-<32 hex trace>-<16 hex parent>-<flags>``) keeps its trace: the 32 hex digits
become the root, the parent id the parent, the sampled flag ``Sampled``. Otherwise the
header is made from the invocation's id, so that the id in the invocation's record
(``triggerfish invocations``) leads to it: the root is the current second and the hex
of the id's last 12 characters (random in every id), the parent the hex of its last 8.
That header is made by the environment itself (here for Python and ``provided``
runtimes, by ``traceHeader`` of ``node/bootstrap.js`` for Node.js, which follows this
rule to the character), so that an invocation without a trace costs the node nothing:
the node makes the header only for an invocation that continues a trace.
"""

from __future__ import annotations

import hashlib
import re
import time

from triggerfish.ids import ID_LENGTH, id_time

_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def trace_header(request_id: str, trace: str | None = None) -> str:
    """The ``_X_AMZN_TRACE_ID`` of the invocation ``request_id``; ``trace`` is the
    triggering event's ``traceparent`` (or an X-Ray header, kept as it is)."""
    if trace:
        if trace.startswith("Root=1-"):
            return trace
        match = _TRACEPARENT.match(trace.strip().lower())
        if match is not None and int(match.group(1), 16) and int(match.group(2), 16):
            root, parent, flags = match.groups()
            sampled = int(flags, 16) & 1
            return f"Root=1-{root[:8]}-{root[8:]};Parent={parent};Sampled={sampled}"
    if len(request_id) == ID_LENGTH and request_id.isascii():
        tail = request_id[-12:].encode().hex()
        seconds = int(time.time()) & 0xFFFFFFFF
        return f"Root=1-{seconds:08x}-{tail};Parent={tail[8:]};Sampled=0"
    try:
        seconds = int(id_time(request_id))
    except (ValueError, KeyError):  # not one of Triggerfish's ids
        seconds = int(time.time())
    digest = hashlib.sha256(request_id.encode()).hexdigest()
    return f"Root=1-{seconds & 0xFFFFFFFF:08x}-{digest[:24]};Parent={digest[24:40]};Sampled=0"
