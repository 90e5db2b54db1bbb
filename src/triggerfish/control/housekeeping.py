"""``Housekeeping``: applies topic retention and forgets expired dedupe keys and
idempotency records, now and then, for as long as the node runs; with a
``Retention`` (``control/retention.py``), prunes invocation records and the rest of
what grows, and gives SQLite space back, in the same pass."""

from __future__ import annotations

import asyncio
import logging

from triggerfish.bus.base import Bus
from triggerfish.control.idempotency import Idempotency
from triggerfish.control.retention import Retention
from triggerfish.tasks import cancel_task

log = logging.getLogger("triggerfish")


class Housekeeping:
    def __init__(
        self,
        bus: Bus,
        *,
        interval: float,
        idempotency: Idempotency | None = None,
        retention: Retention | None = None,
    ) -> None:
        self._bus = bus
        self._idempotency = idempotency
        self.retention = retention
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._keep_house(), name="housekeeping")

    async def stop(self) -> None:
        await cancel_task(self._task)
        self._task = None

    async def _keep_house(self) -> None:
        while True:
            try:
                removed = await self._bus.trim()
                if removed:
                    log.info("retention removed %d event(s)", removed)
                self._count("events", removed)
            except Exception:
                log.exception("applying retention failed; will try again")
            if self._idempotency is not None:
                try:
                    forgotten = await self._idempotency.prune()
                    if forgotten:
                        log.info("forgot %d expired idempotency record(s)", forgotten)
                    self._count("idempotency_records", forgotten)
                except Exception:
                    log.exception("forgetting expired idempotency records failed; will try again")
            await self._apply_retention()
            await asyncio.sleep(self._interval)

    async def _apply_retention(self) -> None:
        """Prune records and the rest (``Retention.run`` logs each part that fails)."""
        if self.retention is None:
            return
        try:
            removed = await self.retention.run()
        except Exception:
            log.exception("applying records retention failed; will try again")
            return
        if removed:
            done = ", ".join(f"{count} {kind}" for kind, count in sorted(removed.items()))
            log.info("retention removed %s", done)

    def _count(self, kind: str, removed: int) -> None:
        if self.retention is not None:
            self.retention.count(kind, removed)
