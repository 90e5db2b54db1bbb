"""``Membership``: each node writes a heartbeat to the store; any node lists them all.

A node's row carries its address, version, state (``running``, ``draining`` while it
stops, ``stopped`` once it did) and the figures it reports (warm environments,
invocations in flight, its load). A node whose heartbeat is older than ``gone_after``
is shown as gone: it died or lost the store, and what it had leased returns to the
others when the leases end.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from triggerfish.store.cluster import Cluster, NodeState
from triggerfish.tasks import cancel_task

log = logging.getLogger("triggerfish.cluster")


@dataclass(frozen=True, slots=True)
class NodeView:
    """A node as ``GET /v1/nodes`` shows it."""

    id: str
    address: str
    version: str
    state: str  # running | draining | stopped | gone
    started_at: float
    heartbeat_age: float  # seconds since its last heartbeat
    info: dict[str, Any]
    this: bool  # the node that answers


class Membership:
    def __init__(
        self,
        nodes: Cluster,
        *,
        node_id: str,
        address: str,
        version: str,
        report: Callable[[], dict[str, Any]],
        interval: float = 1.0,
        gone_after: float = 5.0,
    ) -> None:
        self._nodes = nodes
        self.node_id = node_id
        self.address = address
        self.version = version
        self._report = report
        self.interval = interval
        self.gone_after = gone_after
        self.started_at = time.time()
        self.state: NodeState = "running"
        self._failing = False  # the last heartbeat was not written
        self._task: asyncio.Task[None] | None = None
        # Running nodes as of the last heartbeat (this one included): they share the
        # flow limits of the triggers they all run (dispatch/flow.py).
        self.live_nodes = 1

    async def start(self) -> None:
        await self._beat()
        self._task = asyncio.create_task(self._keep(), name="heartbeat")

    async def drain(self) -> None:
        """Tell the others this node is stopping; it keeps beating until ``stop``."""
        self.state = "draining"
        await self._beat(quiet=True)

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_task(task)
        self.state = "stopped"
        await self._beat(quiet=True)

    async def _keep(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self._beat()

    async def _beat(self, *, quiet: bool = False) -> None:
        try:
            await self._nodes.heartbeat(
                self.node_id,
                address=self.address,
                version=self.version,
                started_at=self.started_at,
                state=self.state,
                info=self._report(),
            )
        except Exception as exc:
            if not quiet and not self._failing:
                log.warning("heartbeat not written (%s); trying again every %g s", exc,
                            self.interval)  # fmt: skip
            self._failing = True
            return
        if self._failing:
            log.info("heartbeat written again")
            self._failing = False
        try:
            now = time.time()
            rows = await self._nodes.list_nodes()
            live = sum(
                1
                for row in rows
                if row.state == "running" and now - row.heartbeat_at <= self.gone_after
            )
            self.live_nodes = max(1, live)
        except Exception:
            # An older count stays: the store is away, the heartbeat said so already.
            pass

    async def view(self) -> list[NodeView]:
        now = time.time()
        out = []
        for row in await self._nodes.list_nodes():
            age = max(now - row.heartbeat_at, 0.0)
            state: str = row.state
            if state != "stopped" and age > self.gone_after:
                state = "gone"
            out.append(
                NodeView(
                    id=row.id,
                    address=row.address,
                    version=row.version,
                    state=state,
                    started_at=row.started_at,
                    heartbeat_age=round(age, 3),
                    info=dict(row.info),
                    this=row.id == self.node_id,
                )
            )
        return sorted(out, key=lambda v: (v.started_at, v.id))
