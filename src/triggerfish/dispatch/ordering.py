"""Ordered triggers on a cluster: one node at a time runs each.

On a cluster every node runs every trigger, and the bus spreads a group's events over
the nodes' fetches (one durable consumer per group, whoever pulls first). Per-key
order needs one runner to see a key's events one after the other, so an ordered
trigger is run under a lease in the store (``trigger:<id>``, the same kind as the
leader's): the node that holds it runs the trigger, the others wait and take over when
the holder stops (it hands the lease back at once) or dies (its lease expires). The
new holder's runner starts no invocation before the leases the old holder had on the
bus are gone (``TriggerRunner``), so the old holder's events, which come back first,
run before the later events of their keys.

Set aside: keys hashed to nodes by membership. The bus cannot route a group's events
by key, so every node would still lease every event and hand back those of other
nodes' keys; and every change of membership moves keys, each move needing the same
hand-over as here. Ordered triggers spread over nodes by trigger instead.
"""

from __future__ import annotations

from collections.abc import Callable

from triggerfish.cluster.lease import LeaderLease
from triggerfish.dispatch.policy import Subscription
from triggerfish.dispatch.runner import TriggerRunner
from triggerfish.store.cluster import Cluster


def lease_name(trigger_id: str) -> str:
    return f"trigger:{trigger_id}"


class ExclusiveRunner:
    """Runs a trigger (a new runner from ``make`` each time) while this node holds the
    trigger's lease; stops it, handing its events back, when the lease is lost."""

    def __init__(
        self,
        subscription: Subscription,
        make: Callable[[], TriggerRunner],
        leases: Cluster,
        *,
        holder: str,
        ttl: float = 5.0,
        grace: float = 10.0,
    ) -> None:
        self.subscription = subscription
        self._make = make
        self._grace = grace
        self._runner: TriggerRunner | None = None
        self._lease = LeaderLease(
            leases, name=lease_name(subscription.id), holder=holder, ttl=ttl,
            on_change=self._changed,
        )  # fmt: skip

    @property
    def running(self) -> bool:
        return self._runner is not None

    async def start(self) -> None:
        await self._lease.start()

    async def stop(self, *, grace: float) -> None:
        self._grace = grace
        await self._lease.stop()
        await self._changed(False)

    async def _changed(self, held: bool) -> None:
        if held and self._runner is None:
            runner = self._make()
            await runner.start()
            self._runner = runner
        elif not held and self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.stop(grace=self._grace)
