"""``LeaderLease``: one node of a cluster at a time holds a named lease in the store.

The holder renews the lease every third of its time to live, counted from the start
of one renewal to the next; a node that cannot renew in time (it died, or lost the
store) is no longer the holder once the lease expires, and another node takes it at
its next attempt. So a new holder takes over at most ``ttl + ttl / 3`` after the last
renewal of a dead one, within two lease periods.

A renewal has a third of the ttl for the store to answer. One that fails makes the
holder give up leadership at once, at the latest two thirds of the ttl after the last
renewal that worked began: what runs under the lease has the last third to stop
before the lease can expire and another node takes it. For a moment there may be no
leader, never knowingly two. (Two leaders remain possible when the holder itself is
late by more than that third: a process stopped and resumed, an event loop kept busy,
a reaction to taking the lead that holds up the next renewal as long. Schedules publish
with deterministic ids, so the bus drops what two leaders both fire; a broker source
that two nodes run at once takes its messages twice.)

What the node does when leadership changes (``on_change``) may fail: taking the lead
reads the store, which may be away again just then. It is run again at every attempt
until it succeeds, so a node that holds the lease also runs what goes with it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from triggerfish.store.cluster import Cluster
from triggerfish.tasks import cancel_task

log = logging.getLogger("triggerfish.cluster")


class LeaderLease:
    def __init__(
        self,
        leases: Cluster,
        *,
        name: str,
        holder: str,
        ttl: float = 5.0,
        on_change: Callable[[bool], Awaitable[None]],
    ) -> None:
        self._leases = leases
        self.name = name
        self.holder = holder
        self.ttl = ttl
        self._on_change = on_change
        self.held = False
        self._in_force = True  # ``on_change`` succeeded for ``held``
        self._due = 0.0  # the event loop's time of the next attempt
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Try once (so a lone node leads as soon as it is up), then keep trying."""
        await self._attempt()
        self._task = asyncio.create_task(self._keep(), name=f"lease {self.name}")

    async def stop(self) -> None:
        """Stop renewing and hand the lease back, so another node takes over at once."""
        task, self._task = self._task, None
        await cancel_task(task)
        if self.held:
            await self._set(False)
            try:
                await self._leases.release_lease(self.name, self.holder)
            except Exception:
                log.warning("could not release the %s lease; it expires by itself", self.name)

    async def _keep(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(max(self._due - loop.time(), 0.0))
            await self._attempt()

    async def _attempt(self) -> None:
        # Due a third of the ttl after this one begins, however long the store takes to
        # answer it: counted from its end, a slow renewal followed by one that fails
        # would give up the lead only as the lease expires.
        self._due = asyncio.get_running_loop().time() + self.ttl / 3
        try:
            held = await asyncio.wait_for(
                self._leases.acquire_lease(self.name, self.holder, self.ttl), self.ttl / 3
            )
        except Exception as exc:
            if self.held:
                log.warning("lost the %s lease: the store did not answer (%s)", self.name, exc)
            held = False
        if held != self.held:
            await self._set(held)
        elif not self._in_force:
            await self._apply(held)

    async def _set(self, held: bool) -> None:
        self.held = held
        log.info("%s the %s lease", "holding" if held else "no longer holding", self.name)
        await self._apply(held)

    async def _apply(self, held: bool) -> None:
        try:
            await self._on_change(held)
        except Exception:
            if self._in_force:  # said once, not at every attempt
                log.exception("reacting to the %s lease failed; retrying", self.name)
            self._in_force = False
            return
        if not self._in_force:
            log.info("reacting to the %s lease succeeded on a later attempt", self.name)
        self._in_force = True
