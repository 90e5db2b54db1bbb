"""``ChangeWatcher``: a change made on one node is in force on every node soon after.

A node that deploys, moves an alias or changes a trigger bumps a counter in the store
(``announce``); every node reads that counter every ``interval`` and, when it moved,
drops what it cached from the store and reloads it (``on_change``). Polling one row
works the same on every store and costs one small read a node per interval; with the
default of a quarter second a change is in force cluster-wide well within a second.
A node that cannot read the counter (its store is away) keeps what it has and reads
again; a reload that fails halfway is run again until it holds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from triggerfish.store.cluster import Cluster
from triggerfish.tasks import cancel_task

log = logging.getLogger("triggerfish.cluster")


class ChangeWatcher:
    def __init__(
        self,
        generations: Cluster,
        *,
        on_change: Callable[[], Awaitable[None]],
        interval: float = 0.25,
    ) -> None:
        self._generations = generations
        self._on_change = on_change
        self.interval = interval
        self.seen = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.seen = await self._generations.generation()
        self._task = asyncio.create_task(self._watch(), name="change watcher")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_task(task)

    async def announce(self) -> None:
        """Tell the other nodes that this one changed something they cache. This node
        has applied its own change already, so it does not react to its own bump
        (unless another node's bump came in between, which it then applies)."""
        value = await self._generations.bump_generation()
        if value == self.seen + 1:
            self.seen = value

    async def _watch(self) -> None:
        failing = False  # the store did not answer the last read: said once, not per read
        unapplied = -1  # the counter whose change failed to apply, said once
        while True:
            await asyncio.sleep(self.interval)
            try:
                value = await self._generations.generation()
            except Exception as exc:
                if not failing:
                    log.warning("cannot read the cluster's change counter (%s); retrying", exc)
                    failing = True
                continue
            if failing:
                log.info("reading the cluster's change counter again")
                failing = False
            if value != self.seen:
                try:
                    await self._on_change()
                except Exception:
                    # Not seen yet: applied again at the next read, until it holds (the
                    # store may have gone away halfway through the reload).
                    if value != unapplied:
                        log.exception("applying a change made on another node failed; retrying")
                        unapplied = value
                    continue
                self.seen = value
