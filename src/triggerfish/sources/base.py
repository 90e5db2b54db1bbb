"""Event sources: what turns the outside world into events on the bus.

A ``SourceKind`` knows one kind of trigger source (``schedule``, ``files``, a broker):
it checks a trigger's options at deploy time and creates the ``Source`` that runs for
one trigger. A running source publishes CloudEvents to the trigger's topic and only
then acknowledges its own input, so an event it took is never lost. The dispatcher
delivers from that topic like from any other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # the source process imports this module without the store's drivers
    from triggerfish.bus.base import Bus
    from triggerfish.store.sql import SqlStore


@dataclass(frozen=True, slots=True)
class SourceContext:
    trigger_id: str  # also the consumer group that delivers its events
    function: str
    topic: str  # where the source publishes (the trigger's bus topic)
    options: Mapping[str, Any]  # the trigger's options for this kind (e.g. config["schedule"])
    config: Mapping[str, Any]  # the trigger's whole stored config
    bus: Bus
    store: SqlStore
    data_dir: Path  # a folder the source may keep files in: data_dir/sources/<trigger id>


class Source(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class SourceKind(Protocol):
    #: the trigger key (``schedule``, ``files``) or the ``source.kind`` it serves
    name: str

    def validate(self, options: Mapping[str, Any], *, where: str) -> None:
        """Raise ConfigError (message starting with ``where``, the key path) when the
        options cannot work (a bad cron line, a missing folder ...)."""

    def create(self, context: SourceContext) -> Source | None:
        """The running source for one trigger, or None for kinds that need none."""

    # A kind may also have ``one_per_cluster(options) -> bool``: True when a trigger
    # with these options must run on one node of a cluster only (the node holding the
    # leader lease runs it): a schedule, or a broker subscription that every node would
    # otherwise receive in full. Without it, every node runs the kind's sources.
