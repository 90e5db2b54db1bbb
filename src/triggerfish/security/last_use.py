"""When each credential (API token or access key) was last used.

``touch`` runs on every authenticated request, so it only notes the time in memory;
the first use, and then at most one use every ``every`` seconds, is also written to the
store (a document of kind ``credential-use``, named by the credential's id), off the
request's path. ``read`` gives the later of what the store holds and what this node
saw, so a listing on the node that served the requests is exact, and one on another
node of a cluster is at most ``every`` seconds behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from triggerfish.store.sql import SqlStore


KIND = "credential-use"
EVERY = 60.0

log = logging.getLogger("triggerfish.security")


class LastUse:
    def __init__(
        self, store: SqlStore, *, every: float = EVERY, clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self._every = every
        self._clock = clock
        self._seen: dict[str, float] = {}
        self._written: dict[str, float] = {}
        self._writes: set[asyncio.Task[None]] = set()

    def touch(self, credential_id: str) -> None:
        now = self._clock()
        self._seen[credential_id] = now
        if now - self._written.get(credential_id, float("-inf")) < self._every:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no event loop (a synchronous caller): memory only
        self._written[credential_id] = now
        task = loop.create_task(self._write(credential_id, now))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _write(self, credential_id: str, moment: float) -> None:
        try:
            await self._store.documents.put(KIND, credential_id, {"at": moment})
        except Exception as exc:  # never let a background write fail loudly
            # The store may be away for a moment; the next use after ``every`` retries.
            log.warning("could not record the last use of %s: %s", credential_id, exc)

    async def read(self) -> dict[str, float]:
        """The last use of every credential used since records began, by id."""
        stored = await self._store.documents.list(KIND)
        out = {name: float(body.get("at", 0.0)) for name, body in stored.items()}
        for credential_id, moment in self._seen.items():
            out[credential_id] = max(moment, out.get(credential_id, 0.0))
        return out

    async def aclose(self) -> None:
        """Wait for the writes in flight."""
        for task in list(self._writes):
            with contextlib.suppress(asyncio.CancelledError):
                await task
