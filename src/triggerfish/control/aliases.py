"""Aliases: names that point at a version of a function, and may send a share of its
invocations to one more version (Lambda's ``RoutingConfig``); ``live`` is the one
deploys move. A move is in force for the next call and the next delivery of every
trigger that names the alias: ``changed`` runs after each.

``set`` pins an alias: a deploy no longer moves ``live`` once a user put it somewhere
(``follow`` lets deploys move it again). ``Routing.pick`` is the one place where an
invocation of a weighted alias gets its version, whatever path it came by.
"""

from __future__ import annotations

import math
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from triggerfish.errors import ValidationError
from triggerfish.store.records import AliasRecord
from triggerfish.store.sql import SqlStore

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Routing(Generic[T]):
    """Where the invocations of a qualifier go: ``main``, or ``additional`` for a share
    ``weight`` of them, picked per invocation (uniformly at random)."""

    main: T
    additional: T | None = None
    weight: float = 0.0

    def pick(self, draw: Callable[[], float] = random.random) -> T:
        """The version one invocation runs; ``draw`` gives uniform numbers in [0, 1)."""
        if self.additional is not None and draw() < self.weight:
            return self.additional
        return self.main


def parse_routing(routing: Mapping[str, Any] | None) -> tuple[str | int, float] | None:
    """The additional version and its weight of a ``{version: weight}`` mapping (as
    Lambda's ``AdditionalVersionWeights``); None for no routing. ValidationError saying
    what to change for more than one version or a weight outside [0, 1)."""
    if not routing:
        return None
    if len(routing) > 1:
        raise ValidationError(
            f"routing: an alias sends a share of its invocations to one more version at "
            f"most; got {len(routing)} ({', '.join(map(str, routing))})",
            field="routing",
        )
    ((version, weight),) = routing.items()
    if (
        isinstance(weight, bool)
        or not isinstance(weight, int | float)
        or not math.isfinite(weight)
        or not 0 <= weight < 1
    ):
        raise ValidationError(
            f"routing: the weight of version {version} must be a number from 0 up to, not "
            f"including, 1 (0.1 sends a tenth of the invocations to it); got {weight!r}",
            field="routing",
        )
    if isinstance(version, str) and not version.strip():
        raise ValidationError("routing: name the version by its number or id", field="routing")
    return version, float(weight)


class Aliases:
    def __init__(self, store: SqlStore, *, changed: Callable[[str], Awaitable[None]]) -> None:
        self._store = store
        self._changed = changed

    async def all(self, function: str) -> list[AliasRecord]:
        """The aliases of ``function`` by name; NotFoundError when it does not exist."""
        return await self._store.list_aliases(function)

    async def find(self, function: str, alias: str) -> AliasRecord | None:
        """One alias of ``function``, None when it has none of that name; NotFoundError
        when the function does not exist."""
        for record in await self._store.list_aliases(function):
            if record.name == alias:
                return record
        return None

    async def numbers(self, function: str) -> dict[str, int]:
        """The number of each version of ``function``, by version id (one store read
        for any number of aliases)."""
        return {v.version: v.number for v in await self._store.list_versions(function)}

    async def set(
        self,
        function: str,
        alias: str,
        version: str | int,
        *,
        routing: Mapping[str, Any] | None = None,
        rollback: Mapping[str, Any] | None = None,
    ) -> AliasRecord:
        """Point ``alias`` at a version (by id or number), creating the alias if needed,
        and pin it. ``routing`` (``{version: weight}``) sends that share of the
        invocations to one more version, and no routing sends them all to ``version``;
        ``rollback`` (``RollbackRule.to_json``) is watched while it routes so."""
        parsed = parse_routing(routing)
        if rollback is not None and parsed is None:
            raise ValidationError(
                "rollback: an automatic rollback watches the version an alias sends a share "
                "of its invocations to; give that version a weight too",
                field="rollback",
            )
        additional, weight = parsed if parsed is not None else (None, 0.0)
        record = await self._store.set_alias(
            function,
            alias,
            version,
            additional=additional,
            weight=weight,
            rollback=None if rollback is None else dict(rollback),
        )
        await self._changed(function)
        return record

    async def follow(self, function: str, alias: str) -> AliasRecord:
        """Let deploys move ``alias`` (``live``) again, from the next deploy on."""
        record = await self._store.follow_alias(function, alias)
        await self._changed(function)
        return record

    async def roll_back(self, record: AliasRecord, seen: Mapping[str, Any]) -> AliasRecord | None:
        """Send every invocation of the alias of ``record`` to its main version again,
        keeping ``seen`` as its last rollback; None when the alias no longer routes to
        the version ``record`` names (a user moved it meanwhile)."""
        if record.additional_version is None:
            return None
        moved = await self._store.roll_back_alias(
            record.function, record.name, record.additional_version, dict(seen)
        )
        if moved is not None:
            await self._changed(record.function)
        return moved

    async def delete(self, function: str, alias: str) -> None:
        """Remove an alias (never ``live``)."""
        await self._store.delete_alias(function, alias)
        await self._changed(function)
