"""Liveness and readiness, for load balancers and orchestrators.

- ``GET /healthz``: the process answers (200 whenever it can answer at all). A failing
  liveness probe means "restart me", which never helps a full disk or a store that is
  away, so it checks nothing else.
- ``GET /readyz``: the node can take events now: it is running and not draining, the
  disk is above ``min_free_disk``, and the store and the bus answer. 200, or 503 with
  ``Retry-After`` and the reasons in the body: send traffic elsewhere for a while.

The checks are cheap (one ``statvfs``, one read of the store, one lookup on the bus)
and their outcome is kept for ``TTL`` seconds, so a probe per second from many load
balancers costs the node one check per second, and never a write.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from triggerfish import __version__
from triggerfish.api.redact import without_paths
from triggerfish.errors import NotFoundError

if TYPE_CHECKING:
    from triggerfish.node import Node

#: Seconds a readiness outcome is kept.
TTL = 1.0
#: Seconds the store or the bus has to answer a readiness check.
PROBE_TIMEOUT = 2.0
#: A topic name no one can create (``_`` is internal): looking it up reaches the bus.
_PROBE_TOPIC = "_triggerfish_readiness_probe"

router = APIRouter(tags=["health"])


class Readiness:
    """Whether ``node`` can take events now, checked at most once per ``ttl``."""

    def __init__(
        self, node: Node, *, ttl: float = TTL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.node = node
        self.ttl = ttl
        self._clock = clock
        self._reasons: list[str] = []
        self._checked_at: float | None = None
        self._lock = asyncio.Lock()

    async def reasons(self) -> list[str]:
        """Why the node is not ready; empty when it is."""
        async with self._lock:  # concurrent probes share one check
            now = self._clock()
            if self._checked_at is None or now - self._checked_at >= self.ttl:
                self._reasons = await self._check()
                self._checked_at = self._clock()
            return list(self._reasons)

    async def _check(self) -> list[str]:
        node = self.node
        if node.stopping:
            return ["draining: the node is shutting down"]
        if not node.running:
            return ["starting: the node is not running yet"]
        reasons = []
        space = node.disk.space()
        if space.low:
            reasons.append(
                f"low disk space: {space.describe()} (min_free_disk); new events are refused"
            )
        store, bus = await asyncio.gather(self._store(), self._bus())
        return reasons + [r for r in (store, bus) if r is not None]

    async def _store(self) -> str | None:
        try:
            await asyncio.wait_for(self.node.store.schema_revision(), PROBE_TIMEOUT)
        except Exception as exc:
            return f"the store is unavailable: {without_paths(str(exc)) or type(exc).__name__}"
        return None

    async def _bus(self) -> str | None:
        try:
            await asyncio.wait_for(self.node.bus.topic(_PROBE_TOPIC), PROBE_TIMEOUT)
        except NotFoundError:
            return None  # it answered
        except Exception as exc:
            return f"the bus is unavailable: {without_paths(str(exc)) or type(exc).__name__}"
        return None


def readiness(request: Request) -> Readiness:
    found: Readiness | None = getattr(request.app.state, "readiness", None)
    if found is None:
        found = request.app.state.readiness = Readiness(request.app.state.node)
    return found


@router.get("/healthz")
async def healthz(request: Request) -> dict[str, Any]:
    """Liveness: the process answers."""
    node = request.app.state.node
    return {"status": "ok" if node.running else "starting", "version": __version__}


@router.get(
    "/readyz",
    responses={
        503: {
            "description": "Not ready now: the reasons, and Retry-After.",
            "headers": {
                "Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}
            },
        }
    },
)
async def readyz(request: Request) -> JSONResponse:
    """Readiness: 200 when the node can take events now, else 503 with the reasons."""
    reasons = await readiness(request).reasons()
    if not reasons:
        return JSONResponse({"status": "ready", "version": __version__})
    return JSONResponse(
        {"status": "not ready", "reasons": reasons, "version": __version__},
        status_code=503,
        headers={"Retry-After": str(_retry_after(request.app.state.node))},
    )


def _retry_after(node: Node) -> int:
    """Seconds until asking again is worth it: the disk is checked every few seconds."""
    return max(1, round(node.disk.interval * 5)) if node.disk.space().low else 1
