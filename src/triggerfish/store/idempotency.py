"""``IdempotencyRecords``: which deliveries of a function's events were handled, and
with what result, shared by every node of a cluster.

A record is named by its function and a key. A delivery first *claims* its key: one
atomic upsert either creates the record (or takes over one whose lease or expiry has
passed) for this delivery, with a fresh token, or leaves the record of another as it
is, which the claim then reports: completed with its result, or in progress until its
lease ends. Of deliveries racing for one key exactly one is told ``claimed``. The
holder of a claim then *completes* it with the handler's result (kept until it
expires) or *releases* it (a handler that failed), each only while its token still
names the claim, so a delivery whose lease ran out and was taken over cannot write
over its successor.

Times are Unix seconds from the store's clock; leases written by one node are read
against the clock of another (see ``store/cluster.py``).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa

from triggerfish.errors import ValidationError
from triggerfish.store import schema as t
from triggerfish.store.documents import Transaction
from triggerfish.store.engine import dialect_insert

ClaimStatus = Literal["claimed", "completed", "in_progress"]
MAX_KEY_LENGTH = 256


@dataclass(frozen=True, slots=True)
class Claim:
    """What a claim found. ``claimed``: this delivery holds the key until
    ``expires_at`` under ``token``; ``completed``: another delivery handled it and
    ``result`` is its JSON text; ``in_progress``: another delivery holds the key
    until ``expires_at``."""

    status: ClaimStatus
    expires_at: float
    token: str | None = None
    result: str | None = None


class IdempotencyRecords:
    def __init__(
        self, read: Transaction, write: Transaction, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._read = read
        self._write = write
        self._clock = clock

    async def claim(self, function: str, key: str, *, lease: float) -> Claim:
        """Claim ``key`` of ``function`` for ``lease`` seconds, unless a live record
        holds it (completed and not expired, or in progress within its lease)."""
        check_key(key)
        if lease <= 0:
            raise ValidationError(f"a claim needs a positive lease, not {lease}", field="lease")
        now = self._clock()
        token = secrets.token_hex(16)
        c = t.idempotency.c
        async with self._write() as conn:
            insert = dialect_insert(conn, t.idempotency).values(
                function=function,
                key=key,
                token=token,
                completed=False,
                result=None,
                claimed_at=now,
                expires_at=now + lease,
            )
            # One statement: PostgreSQL locks a conflicting row and checks the condition
            # on its latest version, so of deliveries racing for a key exactly one wins,
            # whether the key is new or its record has run out.
            taken = await conn.execute(
                insert.on_conflict_do_update(
                    index_elements=[c.function, c.key],
                    set_={
                        "token": insert.excluded.token,
                        "completed": insert.excluded.completed,
                        "result": insert.excluded.result,
                        "claimed_at": insert.excluded.claimed_at,
                        "expires_at": insert.excluded.expires_at,
                    },
                    where=c.expires_at <= now,
                ).returning(c.token)
            )
            if taken.first() is not None:
                return Claim("claimed", now + lease, token=token)
            row = (
                await conn.execute(
                    sa.select(c.completed, c.result, c.expires_at).where(
                        c.function == function, c.key == key
                    )
                )
            ).one()
        if row.completed:
            return Claim("completed", row.expires_at, result=row.result)
        return Claim("in_progress", row.expires_at)

    async def complete(
        self, function: str, key: str, token: str, result: str, *, expires: float
    ) -> bool:
        """Keep ``result`` (JSON text) as the outcome of ``key`` for ``expires``
        seconds; False when ``token`` no longer holds the claim (another delivery took
        it over after its lease ended), and then nothing is written."""
        if expires <= 0:
            raise ValidationError(
                f"a record needs a positive expiry, not {expires}", field="expires"
            )
        c = t.idempotency.c
        async with self._write() as conn:
            done = await conn.execute(
                t.idempotency.update()
                .where(
                    c.function == function,
                    c.key == key,
                    c.token == token,
                    c.completed.is_(False),
                )
                .values(completed=True, result=result, expires_at=self._clock() + expires)
            )
            return bool(done.rowcount)

    async def release(self, function: str, key: str, token: str) -> bool:
        """Drop the claim that ``token`` holds, so the next delivery runs; False when
        it holds none (completed, or taken over)."""
        c = t.idempotency.c
        async with self._write() as conn:
            done = await conn.execute(
                t.idempotency.delete().where(
                    c.function == function,
                    c.key == key,
                    c.token == token,
                    c.completed.is_(False),
                )
            )
            return bool(done.rowcount)

    async def prune(self) -> int:
        """Forget the records that expired (claims whose lease ended among them);
        returns how many."""
        async with self._write() as conn:
            done = await conn.execute(
                t.idempotency.delete().where(t.idempotency.c.expires_at <= self._clock())
            )
            return int(done.rowcount)

    async def count(self, function: str) -> int:
        """How many records ``function`` has, expired or not."""
        c = t.idempotency.c
        async with self._read() as conn:
            found = await conn.scalar(
                sa.select(sa.func.count()).select_from(t.idempotency).where(c.function == function)
            )
        return int(found or 0)


def check_key(key: str) -> None:
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ValidationError(
            f"an idempotency key has 1 to {MAX_KEY_LENGTH} characters, not {len(key)}; "
            "hash a longer one",
            field="key",
        )
