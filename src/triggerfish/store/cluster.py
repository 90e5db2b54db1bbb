"""``Cluster``: what the nodes sharing one store tell each other through it.

- Nodes: each node writes its row on every heartbeat (address, release, state, and
  free-form figures such as warm environments or invocations in flight), so every node
  and every person can see who is there and who has gone quiet.
- Leases: a named role that one node holds at a time for a while (running the
  schedules, say). Taking one is a single atomic upsert, so of nodes racing for a free
  or expired lease exactly one wins; the holder renews it before it expires.
- Blobs: a function's code by content digest. A node that lacks an artifact fetches it
  here; a digest names one content forever, so a second put of it changes nothing.
- Generations: counters that a change bumps (``config``: a deploy, an alias moved) and
  that every node polls, to learn cheaply that its caches are stale.

Times are Unix seconds from the store's clock (``time.time`` unless a test gives
another). A lease's expiry, written by one node, is read against the clock of another:
nodes sharing a store must keep their clocks in step (NTP) to well within a lease's
time to live.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import sqlalchemy as sa

from triggerfish.errors import NotFoundError, ValidationError
from triggerfish.store import schema as t
from triggerfish.store.documents import Transaction
from triggerfish.store.engine import dialect_insert

NodeState = Literal["running", "draining", "stopped"]
NODE_STATES: tuple[NodeState, ...] = get_args(NodeState)
CONFIG = "config"


@dataclass(frozen=True, slots=True)
class NodeRecord:
    id: str
    address: str  # the node's URL, where the others reach it
    version: str  # the Triggerfish release it runs
    started_at: float
    heartbeat_at: float
    state: NodeState
    info: dict[str, Any] = field(default_factory=dict)


class Cluster:
    def __init__(
        self, read: Transaction, write: Transaction, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._read = read
        self._write = write
        self._clock = clock

    # -- nodes ---------------------------------------------------------------------

    async def heartbeat(
        self,
        node_id: str,
        *,
        address: str,
        version: str,
        started_at: float,
        state: str | None = None,
        info: Mapping[str, Any] | None = None,
    ) -> None:
        """Create or refresh the row of ``node_id``, stamped now. ``state`` None keeps
        the stored state (``running`` for a new node), so a state that another node
        set (``set_node_state``) outlives the heartbeats that follow."""
        if state is not None:
            _check_state(state)
        values: dict[str, Any] = {
            "id": node_id,
            "address": address,
            "version": version,
            "started_at": started_at,
            "heartbeat_at": self._clock(),
            "state": state or "running",
            "info": dict(info or {}),
        }
        async with self._write() as conn:
            insert = dialect_insert(conn, t.nodes).values(**values)
            kept = {"id"} if state is not None else {"id", "state"}
            changes = {name: insert.excluded[name] for name in values if name not in kept}
            await conn.execute(
                insert.on_conflict_do_update(index_elements=[t.nodes.c.id], set_=changes)
            )

    async def list_nodes(self) -> list[NodeRecord]:
        """Every node that has sent a heartbeat and was not forgotten, by id; whether a
        node is alive is for the caller to judge from ``heartbeat_at``."""
        async with self._read() as conn:
            rows = await conn.execute(sa.select(t.nodes).order_by(t.nodes.c.id))
            return [_node_record(row) for row in rows]

    async def set_node_state(self, node_id: str, state: str) -> None:
        _check_state(state)
        async with self._write() as conn:
            result = await conn.execute(
                t.nodes.update().where(t.nodes.c.id == node_id).values(state=state)
            )
            if result.rowcount == 0:
                raise NotFoundError(f"no node {node_id!r} in the cluster")

    async def forget_node(self, node_id: str) -> bool:
        """Remove the row of a node that is gone; False when there was none."""
        async with self._write() as conn:
            result = await conn.execute(t.nodes.delete().where(t.nodes.c.id == node_id))
        return bool(result.rowcount)

    # -- leases --------------------------------------------------------------------

    async def acquire_lease(self, name: str, holder: str, ttl: float) -> bool:
        """Take the lease ``name`` for ``ttl`` seconds if it is free, expired or already
        held by ``holder`` (then it is renewed); False while another holder has it."""
        if ttl <= 0:
            raise ValidationError(f"a lease needs a positive time to live, not {ttl}", field="ttl")
        now = self._clock()
        c = t.leases.c
        async with self._write() as conn:
            insert = dialect_insert(conn, t.leases).values(
                name=name, holder=holder, expires_at=now + ttl
            )
            # One statement: PostgreSQL locks the conflicting row and checks the
            # condition on its latest version, so of two racers exactly one updates it.
            taken = await conn.execute(
                insert.on_conflict_do_update(
                    index_elements=[c.name],
                    set_={
                        "holder": insert.excluded.holder,
                        "expires_at": insert.excluded.expires_at,
                    },
                    where=(c.holder == insert.excluded.holder) | (c.expires_at <= now),
                ).returning(c.holder)
            )
            return taken.first() is not None

    async def release_lease(self, name: str, holder: str) -> None:
        """Give the lease up, if ``holder`` holds it (expired or not); otherwise the
        lease stays as it is."""
        c = t.leases.c
        async with self._write() as conn:
            await conn.execute(t.leases.delete().where(c.name == name, c.holder == holder))

    async def lease_holder(self, name: str) -> tuple[str, float] | None:
        """Who holds the lease and until when; None when it is free or expired."""
        async with self._read() as conn:
            row = (await conn.execute(sa.select(t.leases).where(t.leases.c.name == name))).first()
        if row is None or row.expires_at <= self._clock():
            return None
        return row.holder, row.expires_at

    # -- blobs ---------------------------------------------------------------------

    async def put_blob(self, digest: str, kind: str, data: bytes) -> None:
        """Store ``data`` under its content ``digest``. A digest already stored is left
        as it is: the same digest stands for the same content, so nodes that put the
        same code at once neither fail nor write it twice."""
        async with self._write() as conn:
            insert = dialect_insert(conn, t.blobs).values(
                digest=digest, kind=kind, size=len(data), created_at=self._clock(), data=data
            )
            await conn.execute(insert.on_conflict_do_nothing(index_elements=[t.blobs.c.digest]))

    async def get_blob(self, digest: str) -> bytes | None:
        async with self._read() as conn:
            data = await conn.scalar(sa.select(t.blobs.c.data).where(t.blobs.c.digest == digest))
        return None if data is None else bytes(data)

    async def has_blob(self, digest: str) -> bool:
        async with self._read() as conn:
            found = await conn.scalar(
                sa.select(sa.literal(1)).where(t.blobs.c.digest == digest).limit(1)
            )
        return found is not None

    async def delete_blob(self, digest: str) -> bool:
        """False when there was none."""
        async with self._write() as conn:
            result = await conn.execute(t.blobs.delete().where(t.blobs.c.digest == digest))
        return bool(result.rowcount)

    # -- generations ---------------------------------------------------------------

    async def bump_generation(self, name: str = CONFIG) -> int:
        """Add one to the counter ``name`` (the first bump makes it 1); the new value.
        Atomic: concurrent bumps each get a value of their own, none is lost."""
        c = t.generations.c
        async with self._write() as conn:
            insert = dialect_insert(conn, t.generations).values(name=name, value=1)
            value = await conn.scalar(
                insert.on_conflict_do_update(
                    index_elements=[c.name], set_={"value": c.value + 1}
                ).returning(c.value)
            )
        return int(value)

    async def generation(self, name: str = CONFIG) -> int:
        """The counter's value; 0 before its first bump."""
        async with self._read() as conn:
            value = await conn.scalar(
                sa.select(t.generations.c.value).where(t.generations.c.name == name)
            )
        return int(value or 0)


def _check_state(state: str) -> None:
    if state not in NODE_STATES:
        raise ValidationError(
            f"node state {state!r} is not one of {', '.join(NODE_STATES)}", field="state"
        )


def _node_record(row: Any) -> NodeRecord:
    return NodeRecord(
        id=row.id,
        address=row.address,
        version=row.version,
        started_at=row.started_at,
        heartbeat_at=row.heartbeat_at,
        state=row.state,
        info=dict(row.info),
    )
