"""``Idempotency``: the records behind ``@idempotent``, as the functions' API uses them.

A function claims a key before its handler runs, completes it with the handler's
result, or releases it when the handler failed (``store/idempotency.py`` says how a
claim stays atomic across the nodes of a cluster). Every record belongs to the
function whose own access key signed the call, so one function never reads or
settles another's. Leases and expiries are bounded here, and times go back to the
function as seconds from now, never as this node's clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from triggerfish.errors import ConflictError, ValidationError
from triggerfish.store.idempotency import ClaimStatus
from triggerfish.store.sql import SqlStore

#: A claim holds its key for at most this long (a function runs at most 900 s).
MAX_LEASE = 3600.0
#: A completed record is kept for at most this long.
MAX_EXPIRES = 366 * 24 * 3600.0


@dataclass(frozen=True, slots=True)
class ClaimAnswer:
    """A claim as the function sees it: ``token`` when it holds the key, ``result``
    (JSON text) when another delivery completed it, and how many seconds are left of
    the claim's lease or of the completed record."""

    status: ClaimStatus
    expires_in: float
    token: str | None = None
    result: bytes | None = None


class Idempotency:
    def __init__(self, store: SqlStore, *, clock: Callable[[], float] = time.time) -> None:
        self._records = store.idempotency
        self._clock = clock

    async def claim(self, function: str, key: str, *, lease: float) -> ClaimAnswer:
        _check_bound("lease", lease, MAX_LEASE)
        found = await self._records.claim(function, key, lease=lease)
        left = max(0.0, found.expires_at - self._clock())
        result = None if found.result is None else found.result.encode("utf-8")
        return ClaimAnswer(found.status, left, token=found.token, result=result)

    async def complete(
        self, function: str, key: str, token: str, result: object, *, expires: float
    ) -> None:
        """Keep ``result`` (a JSON value) for ``expires`` seconds; ``ConflictError``
        when the claim of ``token`` ended (its lease ran out and another delivery
        took the key over, or it was completed or released already)."""
        _check_bound("expires", expires, MAX_EXPIRES)
        try:
            text = orjson.dumps(result).decode("utf-8")
        except TypeError as exc:
            raise ValidationError(f"the result is not JSON: {exc}", field="result") from None
        if not await self._records.complete(function, key, token, text, expires=expires):
            raise ConflictError(_ended(function, key))

    async def release(self, function: str, key: str, token: str) -> bool:
        """Drop the claim of ``token``, so the next delivery of ``key`` runs; False
        when that claim had ended already."""
        return await self._records.release(function, key, token)

    async def prune(self) -> int:
        """Forget expired records and ended claims (the housekeeping pass)."""
        return await self._records.prune()


def _check_bound(name: str, value: float, most: float) -> None:
    if not 0 < value <= most:
        raise ValidationError(
            f"{name} must be above 0 and at most {most:g} seconds, not {value:g}", field=name
        )


def _ended(function: str, key: str) -> str:
    return (
        f"the claim of key {key!r} of function {function!r} has ended: its lease ran out "
        "and another delivery took the key over, or it was completed or released already"
    )
