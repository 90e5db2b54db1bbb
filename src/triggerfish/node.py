"""The composition root: builds the store, bus, executor, dispatcher and API from
settings, and starts and stops them in order.

No component finds another through a global: everything is built here and passed
down. The API reaches the components through the ``Node`` it was given.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

from triggerfish.bus.sqlite import SqliteBus
from triggerfish.config import Settings
from triggerfish.dispatch.dispatcher import REDRIVE_GROUP, Dispatcher
from triggerfish.dispatch.emitter import Emitter
from triggerfish.dispatch.invoker import Invoker
from triggerfish.errors import ConfigError, NotFoundError
from triggerfish.functions.artifacts import ArtifactStore
from triggerfish.functions.brokers import BrokerConfig, Destinations, parse_target
from triggerfish.functions.build import Builder
from triggerfish.functions.deployer import Deployer, DeployResult
from triggerfish.functions.manifest import FunctionConfig, load_manifest
from triggerfish.functions.package import pack_directory
from triggerfish.observe.costs import CostMeter, Prices
from triggerfish.observe.metrics import Metrics
from triggerfish.observe.recorder import Recorder
from triggerfish.runtime.base import FunctionSpec
from triggerfish.runtime.executor import ProcessExecutor
from triggerfish.security.access_keys import AccessKeys, function_credentials
from triggerfish.security.registry import TokenRegistry
from triggerfish.sinks import Sinks, delete_broker, save_broker
from triggerfish.sources.base import SourceKind
from triggerfish.sources.brokers import broker_kinds
from triggerfish.sources.buckets import BucketKind, BucketStore
from triggerfish.sources.files import FilesKind
from triggerfish.sources.manager import SourceManager
from triggerfish.sources.process import HostedKind, SourceProcess
from triggerfish.sources.routes import HttpRouteKind
from triggerfish.sources.schedule import ScheduleKind
from triggerfish.sources.webhooks import save_webhook
from triggerfish.store.records import LIVE, AliasRecord
from triggerfish.store.sql import SqlStore

log = logging.getLogger("triggerfish")


class Node:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        data = settings.data_dir
        self.bus = SqliteBus(settings.bus_path, dedupe_window=settings.dedupe_window)
        self.store = SqlStore(settings.resolved_store_url)
        self.artifacts = ArtifactStore(data / "artifacts")
        self.builder = Builder(data / "envs")
        self.deployer = Deployer(self.store, self.artifacts, builder=self.builder)
        self.executor = ProcessExecutor(
            work_dir=data / "run",
            idle_ttl=settings.idle_ttl,
            memory_capacity=settings.memory_capacity,
        )
        self.metrics = Metrics(pool_stats=self.executor.pool_stats, groups=self.bus.groups)
        self.recorder = Recorder(self.store, metrics=self.metrics)
        prices = Prices(settings.price_per_request, settings.price_per_gb_second)
        self.costs = CostMeter(self.store, prices=prices)
        # Named brokers that emits and destinations may target, one relay each.
        self.sinks = Sinks(self.bus, self.store, retention=settings.retention)
        self.emitter = Emitter(
            self.bus, known_broker=self.sinks.known, destinations_of=self.destinations_of
        )
        self.tokens = TokenRegistry(self.store, settings.token_path)
        self.dispatcher = Dispatcher(
            self.bus,
            self.executor,
            store=self.store,
            resolve=self.resolve,
            recorder=self.recorder,
            emitter=self.emitter,
            default_retention=settings.retention,
        )
        self.invoker = Invoker(
            self.bus,
            self.executor,
            resolve=self.resolve,
            recorder=self.recorder,
            emitter=self.emitter,
            throttle_wait=settings.throttle_wait,
            sync_limit=settings.sync_payload_limit,
            async_limit=settings.async_payload_limit,
        )
        self.access_keys = AccessKeys(self.store, data / "access-keys.key")
        self.buckets = BucketStore(data / "buckets", self.bus, retention=settings.retention)
        self.source_process = (
            SourceProcess(self.bus, label=str(data.resolve()), log_level=settings.log_level)
            if settings.source_process
            else None
        )
        self.sources = SourceManager(
            self.bus,
            self.store,
            kinds=self.source_kinds(),
            data_dir=data,
            default_retention=settings.retention,
        )
        self._specs: dict[tuple[str, str], FunctionSpec] = {}
        self._destinations: dict[tuple[str, str], Destinations] = {}  # by function, version
        self.generation = 0  # grows with every change of functions or triggers
        self._housekeeping: asyncio.Task[None] | None = None
        self.running = False
        self.admin_token: str | None = None  # set when this start created it

    async def start(self) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        await self.store.start()
        await self.bus.start()
        await self.access_keys.start()
        await self.buckets.start()
        self.admin_token = await self.tokens.start()
        await self.recorder.start()
        await self.executor.start()
        await self.sinks.start()
        await self.dispatcher.start()
        await self.sources.start()
        for function in await self.store.list_functions():
            await self._provision(function.name)
        self._housekeeping = asyncio.create_task(self._keep_house(), name="housekeeping")
        self.running = True
        # What is alive now (modules, the application, the components) lives as long as
        # the node: take it out of the cyclic collector's reach. A full collection walks
        # every object the collector sees, some 60 ms here with the event loop and the
        # bus threads stopped; after this it walks only what was made since start.
        gc.collect()
        gc.freeze()

    async def stop(self) -> None:
        """Stop taking work, let invocations in flight finish within the grace period
        (their events go back to the bus otherwise), then close everything."""
        self.running = False
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._housekeeping
        grace = self.settings.shutdown_grace
        await self.sources.stop()
        if self.source_process is not None:
            await self.source_process.stop()
        await self.dispatcher.stop(grace=grace)
        await self.sinks.stop()
        await self.executor.stop(grace=grace)
        await self.recorder.stop()
        await self.buckets.stop()
        await self.bus.stop()
        await self.store.stop()
        gc.unfreeze()  # what the node held can be collected again

    def source_kinds(self) -> list[SourceKind]:
        """The kinds of trigger source this node runs besides topics; the broker kinds
        that run apart do so in the source process, unless the settings say not to."""
        process = self.source_process
        brokers: list[SourceKind] = [
            HostedKind(kind, process) if process is not None and kind.runs_apart else kind
            for kind in broker_kinds()
        ]
        return [ScheduleKind(), FilesKind(), HttpRouteKind(), BucketKind(self.buckets), *brokers]

    async def _provision(self, function: str) -> None:
        """Start what a function's live version keeps ready: its ``min_warm``
        environments, and a spare process for runtimes that pre-start one."""
        await self.executor.provision(await self.resolve(function))

    async def _changed(self) -> None:
        self._specs.clear()
        self.generation += 1
        await self.dispatcher.refresh()
        await self.sources.refresh()

    async def _keep_house(self) -> None:
        """Apply topic retention and forget expired dedupe keys, now and then."""
        while True:
            try:
                removed = await self.bus.trim()
                if removed:
                    log.info("retention removed %d event(s)", removed)
            except Exception:
                log.exception("applying retention failed; will try again")
            await asyncio.sleep(self.settings.housekeeping_interval)

    # -- functions ---------------------------------------------------------------

    async def resolve(self, function: str, qualifier: str = "live") -> FunctionSpec:
        key = (function, qualifier)
        spec = self._specs.get(key)
        if spec is None:
            version = await self.store.resolve(function, qualifier)
            spec = self.deployer.spec_for(version, qualifier=qualifier)
            config = FunctionConfig.model_validate(version.config)
            self._destinations[(function, version.version)] = config.destinations
            spec = await self._with_aws_environment(spec)
            self._specs[key] = spec
        return spec

    async def _with_aws_environment(self, spec: FunctionSpec) -> FunctionSpec:
        """Functions reach the built-in S3 API with their own access key, as Lambda code
        reaches AWS: endpoint and credentials in the environment (theirs win)."""
        key_id, secret = await function_credentials(self.access_keys, spec.function)
        region = self.buckets.region
        aws = {
            "AWS_ENDPOINT_URL": self.settings.resolved_url,
            "AWS_ACCESS_KEY_ID": key_id,
            "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
        }
        return dataclasses.replace(spec, environment={**aws, **spec.environment})

    def destinations_of(self, spec: FunctionSpec) -> Destinations | None:
        """The destinations of the function version ``spec`` runs (known once resolved)."""
        return self._destinations.get((spec.function, spec.version))

    async def deploy(
        self, name: str, config: FunctionConfig, code_zip: bytes, *, origin: str = "config: "
    ) -> DeployResult:
        self.sources.validate(config.triggers, origin=origin)
        await self._check_destinations(config, origin=origin)
        result = await self.deployer.deploy(name, config, code_zip)
        await self._changed()
        await self._provision(name)
        return result

    async def _check_destinations(self, config: FunctionConfig, *, origin: str) -> None:
        """Destinations must name brokers this server has; their topics are created."""
        existing: set[str] | None = None
        for key in ("on_success", "on_failure"):
            text = getattr(config.destinations, key)
            if text is None:
                continue
            target = parse_target(text)
            if target.broker is not None:
                if not self.sinks.known(target.broker):
                    known = ", ".join(self.sinks.names) or "none"
                    raise ConfigError(
                        f"{origin}destinations.{key}: no broker named {target.broker!r} on "
                        f"this server (brokers: {known}); declare it under 'brokers:' in "
                        "triggerfish.yaml and deploy"
                    )
                continue
            if existing is None:
                existing = {topic.name for topic in await self.bus.topics()}
            if target.address not in existing:
                await self.bus.create_topic(target.address, retention=self.settings.retention)
                existing.add(target.address)

    async def put_broker(self, name: str, config: BrokerConfig) -> None:
        """Store a named broker and (re)start its relay."""
        await save_broker(self.store, name, config)
        await self.sinks.refresh()

    async def delete_broker(self, name: str) -> None:
        await delete_broker(self.store, name)
        await self.sinks.refresh()

    async def deploy_manifest(self, path: Path) -> list[DeployResult]:
        manifest = load_manifest(path)
        for broker, broker_config in manifest.brokers.items():
            await self.put_broker(broker, broker_config)
        for topic, topic_config in manifest.topics.items():
            await self.bus.create_topic(topic, retention=topic_config.retention)
        for webhook, webhook_config in manifest.webhooks.items():
            await save_webhook(
                self.store, self.bus, webhook, webhook_config, retention=self.settings.retention
            )
        results = []
        for name, config in manifest.functions.items():
            code_zip = pack_directory(manifest.code_dir(name))
            origin = f"{manifest.path}: functions.{name}."
            results.append(await self.deploy(name, config, code_zip, origin=origin))
        return results

    async def delete_function(self, name: str) -> None:
        await self.store.delete_function(name)
        await self._changed()
        await self.executor.retire(name)

    # -- aliases -----------------------------------------------------------------------

    async def set_alias(self, function: str, alias: str, version: str | int) -> AliasRecord:
        """Point ``alias`` at a version; triggers and calls that name it follow at once."""
        record = await self.store.set_alias(function, alias, version)
        await self._changed()
        if alias == LIVE:
            await self._provision(function)
        return record

    async def delete_alias(self, function: str, alias: str) -> None:
        await self.store.delete_alias(function, alias)
        await self._changed()

    async def describe_functions(self) -> list[dict[str, Any]]:
        out = []
        for function in await self.store.list_functions():
            live = await self.store.resolve(function.name, "live")
            out.append(
                {
                    "name": function.name,
                    "version": live.version,
                    "number": live.number,
                    "runtime": live.config.get("runtime"),
                    "handler": live.config.get("handler"),
                    "memory": live.config.get("memory"),
                    "updated_at": function.updated_at,
                }
            )
        return out

    async def describe_function(self, name: str) -> dict[str, Any]:
        function = await self.store.get_function(name)
        versions = await self.store.list_versions(name)
        aliases = await self.store.list_aliases(name)
        return {
            "name": function.name,
            "created_at": function.created_at,
            "updated_at": function.updated_at,
            "versions": [
                {
                    "version": v.version,
                    "number": v.number,
                    "created_at": v.created_at,
                    "config": v.config,
                }
                for v in versions
            ],
            "aliases": {a.name: a.version for a in aliases},
            "triggers": await self.describe_triggers(name),
        }

    async def describe_triggers(self, function: str | None = None) -> list[dict[str, Any]]:
        groups = {(g.topic, g.group): g for g in await self.bus.groups()}
        out = []
        for sub in self.dispatcher.subscriptions:
            if function is not None and sub.function != function:
                continue
            group = groups.get((sub.topic, sub.id))
            out.append(
                {
                    "id": sub.id,
                    "function": sub.function,
                    "topic": sub.topic,
                    "filters": list(sub.filters),
                    "retry": asdict(sub.retry),
                    "dead_letter": sub.dead_letter_topic,
                    "batch_size": sub.batch_size,
                    "backlog": group.backlog if group else 0,
                    "in_flight": group.in_flight if group else 0,
                    "waiting_retry": group.waiting_retry if group else 0,
                }
            )
        return out

    # -- events --------------------------------------------------------------------

    async def replay(
        self, topic: str, trigger: str, *, offset: int | None, since: float | None
    ) -> int:
        sub = self.dispatcher.subscription(trigger)
        if sub is None or sub.topic != topic:
            raise NotFoundError(
                f"no trigger {trigger!r} on topic {topic!r}; `triggerfish ls` lists triggers"
            )
        return await self.bus.seek(topic, trigger, offset=offset, since=since)

    async def dead_letters(self, topic: str | None, *, limit: int) -> list[dict[str, Any]]:
        """Dead-letter topics with the events not yet redriven."""
        topics = sorted({s.dead_letter_topic for s in self.dispatcher.subscriptions})
        if topic is not None:
            if topic not in topics:
                raise NotFoundError(f"{topic!r} is not the dead-letter topic of any trigger")
            topics = [topic]
        groups = {g.topic: g for g in await self.bus.groups() if g.group == REDRIVE_GROUP}
        out = []
        for name in topics:
            group = groups.get(name)
            cursor = group.cursor if group else 0
            items = await self.bus.read(name, after=cursor, limit=limit)
            out.append(
                {
                    "topic": name,
                    "pending": group.backlog if group else len(items),
                    "events": [
                        {
                            "offset": i.offset,
                            "published_at": i.published_at,
                            "event": i.event.to_dict(),
                        }
                        for i in items
                    ],
                }
            )
        return out
