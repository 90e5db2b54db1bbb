"""The named brokers of a node: their stored definitions and one relay each.

Definitions are documents of kind ``broker`` in the store, put by ``triggerfish
deploy`` from the manifest's ``brokers:`` (``save_broker``). ``Sinks`` runs a
``SinkRelay`` for each, restarts one whose definition changed and stops one removed;
its ``_sink.<name>`` topic stays, so events still waiting there go out when a broker
of that name is declared again. ``known`` answers whether a target's broker exists,
and ``stats`` gives the counters of every sink for metrics.
"""

from __future__ import annotations

import asyncio
import logging

from triggerfish.bus.base import Bus
from triggerfish.errors import ConfigError
from triggerfish.functions.brokers import BrokerConfig
from triggerfish.sinks.amqp import AmqpSink
from triggerfish.sinks.base import Sink, SinkStats
from triggerfish.sinks.mqtt import MqttSink
from triggerfish.sinks.nats import JetStreamSink, NatsSink
from triggerfish.sinks.postgres import PostgresNotifySink, PostgresOutboxSink
from triggerfish.sinks.redis import RedisPubSubSink, RedisStreamSink
from triggerfish.sinks.relay import SinkRelay
from triggerfish.sources.brokers.urls import expand_url
from triggerfish.store.sql import SqlStore

log = logging.getLogger("triggerfish.sinks")

KIND = "broker"

SINKS: dict[str, type[Sink]] = {
    sink.kind: sink
    for sink in (
        RedisStreamSink,
        RedisPubSubSink,
        NatsSink,
        JetStreamSink,
        AmqpSink,
        MqttSink,
        PostgresNotifySink,
        PostgresOutboxSink,
    )
}


def make_sink(name: str, config: BrokerConfig) -> Sink:
    url = expand_url(config.url, where=f"broker {name}: url")
    return SINKS[config.kind](name, config, url=url)


async def save_broker(store: SqlStore, name: str, config: BrokerConfig) -> None:
    """Store a definition; ConfigError when its url names a variable the server lacks."""
    expand_url(config.url, where=f"brokers.{name}.url")
    await store.documents.put(KIND, name, config.model_dump(mode="json"))


async def delete_broker(store: SqlStore, name: str) -> None:
    await store.documents.delete(KIND, name)


class Sinks:
    def __init__(self, bus: Bus, store: SqlStore, *, retention: float | None = None) -> None:
        self._bus = bus
        self._store = store
        self._retention = retention
        self._relays: dict[str, tuple[BrokerConfig, SinkRelay]] = {}
        self._lock = asyncio.Lock()

    def known(self, name: str) -> bool:
        return name in self._relays

    @property
    def names(self) -> list[str]:
        return sorted(self._relays)

    def stats(self) -> list[SinkStats]:
        """The counters of every named broker's sink, by name (``pending`` as of the last
        ``count_pending``)."""
        return [relay.sink.stats for _config, relay in sorted(self._relays.values(), key=_name)]

    async def count_pending(self) -> None:
        """Bring every sink's ``pending`` up to date: read when the counters are shown,
        not on each batch the relays send."""
        for _config, relay in list(self._relays.values()):
            await relay.count_pending()

    async def start(self) -> None:
        await self.refresh()

    async def refresh(self) -> None:
        """Run a relay for each stored definition, exactly."""
        async with self._lock:
            wanted: dict[str, BrokerConfig] = {}
            for name, body in (await self._store.documents.list(KIND)).items():
                try:
                    wanted[name] = BrokerConfig.model_validate(body)
                except ValueError:
                    log.exception("broker %s: its stored definition is not valid", name)
            for name in list(self._relays):
                config, relay = self._relays[name]
                if wanted.get(name) != config:
                    del self._relays[name]
                    await relay.stop()
            for name, config in wanted.items():
                if name in self._relays:
                    continue
                try:
                    sink = make_sink(name, config)
                except ConfigError:
                    log.exception("broker %s cannot start", name)
                    continue
                relay = SinkRelay(self._bus, sink, retention=self._retention)
                await relay.start()
                self._relays[name] = (config, relay)
                log.info("broker %s: %s sink to %s", name, config.kind, sink.stats.url)

    async def stop(self) -> None:
        async with self._lock:
            relays, self._relays = list(self._relays.values()), {}
            await asyncio.gather(*(relay.stop() for _config, relay in relays))


def _name(item: tuple[BrokerConfig, SinkRelay]) -> str:
    return item[1].sink.name
