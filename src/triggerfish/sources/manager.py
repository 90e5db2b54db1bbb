"""Runs one ``Source`` per trigger that needs one, in step with the stored triggers.

Triggers whose kind says ``one_per_cluster`` (schedules; broker subscriptions that
every node would receive in full) run only while this node leads: on a cluster, the
node that holds the leader lease runs them for every node; a node on its own always
leads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from triggerfish.bus.base import Bus
from triggerfish.errors import ConfigError
from triggerfish.functions.triggers import TriggerConfig
from triggerfish.sources.base import Source, SourceContext, SourceKind
from triggerfish.store.records import TriggerRecord
from triggerfish.store.sql import SqlStore

log = logging.getLogger("triggerfish.sources")


def options_of(config: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    """The options of a trigger's source: ``config[kind]`` for built-in kinds, the
    ``source`` mapping for brokers."""
    value = config.get(kind)
    if isinstance(value, Mapping):
        return value
    source = config.get("source")
    return source if isinstance(source, Mapping) else {}


def kind_of(config: Mapping[str, Any]) -> str:
    source = config.get("source")
    if isinstance(source, Mapping):
        return str(source.get("kind"))
    for key in ("topic", "schedule", "bucket", "http", "files"):
        if config.get(key) is not None:
            return key
    return "topic"


def _one_per_cluster(handler: SourceKind, config: Mapping[str, Any], kind: str) -> bool:
    decide = getattr(handler, "one_per_cluster", None)
    return bool(decide(options_of(config, kind))) if callable(decide) else False


class SourceManager:
    def __init__(
        self,
        bus: Bus,
        store: SqlStore,
        *,
        kinds: Sequence[SourceKind],
        data_dir: Path,
        default_retention: float | None = None,
        leading: bool = True,
    ) -> None:
        self._bus = bus
        self._leading = leading
        self._store = store
        self._kinds = {kind.name: kind for kind in kinds}
        self._data_dir = data_dir
        self._default_retention = default_retention
        self._running: dict[str, tuple[TriggerRecord, Source]] = {}
        self._lock = asyncio.Lock()
        # Refreshes read the store outside the lock; each read is numbered, and one
        # older than a read already applied is dropped.
        self._reads = 0
        self._applied = 0
        self._stopped = False  # a read that comes back after ``stop`` starts nothing

    def kind(self, name: str) -> SourceKind | None:
        return self._kinds.get(name)

    def stats(self) -> list[dict[str, Any]]:
        """The counters of every running source that keeps some (the broker sources:
        ``BrokerSource.stats``), for metrics; read without waiting for the lock, so a
        scrape never waits for a refresh."""
        gathered = []
        for _record, source in list(self._running.values()):
            stats = getattr(source, "stats", None)
            if callable(stats):
                gathered.append(stats())
        return gathered

    def validate(self, triggers: Sequence[TriggerConfig], *, origin: str) -> None:
        """Check every trigger's source options before a deploy stores them."""
        for index, trigger in enumerate(triggers):
            kind = trigger.kind
            if kind == "topic":
                continue
            handler = self._kinds.get(kind)
            where = f"{origin}triggers[{index}].{'source' if trigger.source else kind}"
            if handler is None:
                known = ", ".join(sorted(self._kinds)) or "none"
                raise ConfigError(f"{where}: this server has no {kind!r} source (it has: {known})")
            config = trigger.model_dump(mode="json")
            handler.validate(options_of(config, kind), where=where)

    async def start(self) -> None:
        await self.refresh()

    async def lead(self, leading: bool) -> None:
        """Start (or stop) the sources of the kinds that run on one node of a cluster.
        Stopping them needs no store, and never waits for one: a node that lost the
        lease because its store went away, or answers slowly, stops them all the same,
        before the lease can pass to another node (a refresh reads the store before it
        takes the lock this waits for)."""
        self._leading = leading
        if leading:
            await self.refresh()
            return
        async with self._lock:
            for trigger_id, (record, source) in list(self._running.items()):
                kind = kind_of(record.config)
                handler = self._kinds.get(kind)
                if handler is not None and _one_per_cluster(handler, record.config, kind):
                    del self._running[trigger_id]
                    await self._stop(trigger_id, source)

    async def refresh(self) -> None:
        self._reads += 1
        read = self._reads
        triggers = await self._store.list_triggers()
        async with self._lock:
            if read < self._applied or self._stopped:
                return  # a later read is in force already, or the manager stopped
            self._applied = read
            wanted = {}
            for trigger in triggers:
                kind = kind_of(trigger.config)
                handler = self._kinds.get(kind)
                if handler is None:
                    continue
                if not self._leading and _one_per_cluster(handler, trigger.config, kind):
                    continue
                wanted[trigger.id] = (trigger, kind)
            for trigger_id in list(self._running):
                record, source = self._running[trigger_id]
                if trigger_id not in wanted or wanted[trigger_id][0] != record:
                    del self._running[trigger_id]
                    await self._stop(trigger_id, source)
            for trigger_id, (record, kind) in wanted.items():
                if trigger_id in self._running:
                    continue
                await self._start(record, kind)

    async def _start(self, record: TriggerRecord, kind: str) -> None:
        existing = {topic.name for topic in await self._bus.topics()}
        if record.topic not in existing:
            await self._bus.create_topic(record.topic, retention=self._default_retention)
        context = SourceContext(
            trigger_id=record.id,
            function=record.function,
            topic=record.topic,
            options=options_of(record.config, kind),
            config=record.config,
            bus=self._bus,
            store=self._store,
            data_dir=self._data_dir / "sources" / record.id,
        )
        try:
            source = self._kinds[kind].create(context)
            if source is None:
                return
            await source.start()
        except Exception:
            # One broken source must not keep the others (or the server) from running.
            log.exception("source of trigger %s (%s) did not start", record.id, kind)
            return
        self._running[record.id] = (record, source)
        log.info("source %s started for trigger %s", kind, record.id)

    async def _stop(self, trigger_id: str, source: Source) -> None:
        try:
            await source.stop()
        except Exception:
            log.exception("source of trigger %s did not stop cleanly", trigger_id)

    async def stop(self) -> None:
        async with self._lock:
            self._stopped = True
            running, self._running = self._running, {}
            for trigger_id, (_record, source) in running.items():
                await self._stop(trigger_id, source)
