"""The composition root: picks the backends (store and bus) from their URLs, builds
every component from the settings, and starts and stops them in order.

No component finds another through a global: everything is built here and passed
down. Nothing here changes state: deploys, alias moves, topics, webhooks, brokers,
replays and deletes are the application layer's (``control``), which the API reaches
as ``node.control``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from triggerfish import __version__
from triggerfish.bus.urls import open_bus
from triggerfish.cluster import ChangeWatcher, LeaderLease, Membership
from triggerfish.config import Settings
from triggerfish.control import Control, Housekeeping, Specs
from triggerfish.control.backup import Backups
from triggerfish.control.releases import ReleaseWatcher
from triggerfish.control.retention import Retention
from triggerfish.control.status import NodeStatus, node_parts
from triggerfish.dispatch.dispatcher import Dispatcher
from triggerfish.dispatch.emitter import Emitter
from triggerfish.dispatch.invoker import Invoker
from triggerfish.durable import DurableExecutions, DurableExecutor, DurableStore
from triggerfish.errors import AdapterError
from triggerfish.functions.artifacts import ArtifactStore
from triggerfish.functions.build import Builder
from triggerfish.functions.deployer import Deployer
from triggerfish.ids import node_tag
from triggerfish.observe.costs import CostMeter, Prices
from triggerfish.observe.disk import DiskSpace, parse_threshold
from triggerfish.observe.metrics import Metrics
from triggerfish.observe.recorder import Recorder
from triggerfish.observe.tracing import Tracer
from triggerfish.runtime.base import ACCOUNT
from triggerfish.runtime.executor import ProcessExecutor
from triggerfish.runtime.sandbox import Sandbox, lock_data_dir
from triggerfish.security.access_keys import AccessKeys
from triggerfish.security.last_use import LastUse
from triggerfish.security.registry import TokenRegistry
from triggerfish.security.secrets import SecretStore
from triggerfish.sinks import Sinks
from triggerfish.sources.base import SourceKind
from triggerfish.sources.brokers import broker_kinds
from triggerfish.sources.brokers.urls import redact_url
from triggerfish.sources.buckets import BucketKind, BucketStore
from triggerfish.sources.files import FilesKind
from triggerfish.sources.manager import SourceManager
from triggerfish.sources.process import HostedKind, SourceProcess
from triggerfish.sources.routes import HttpRouteKind
from triggerfish.sources.schedule import ScheduleKind
from triggerfish.store.retention import store_file
from triggerfish.store.sql import SqlStore
from triggerfish.store.urls import database_url, is_shared

log = logging.getLogger("triggerfish")
LEADER = "leader"  # the lease of the node that runs what runs once per cluster


class Node:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        data = settings.data_dir
        self.bus = open_bus(
            settings.resolved_bus_url,
            dedupe_window=settings.dedupe_window,
            ack_wait=settings.lease_margin,
            vacuum=settings.sqlite_vacuum,
        )
        self.store = SqlStore(
            database_url(settings.resolved_store_url), vacuum=settings.sqlite_vacuum
        )
        # A store that several nodes share makes them a cluster: code travels through
        # it, one node leads, and changes are announced to the others.
        self.clustered = is_shared(settings.resolved_store_url)
        self.node_id = _node_id(data)
        # New events stop below this much free disk; accepted work goes on.
        self.disk = DiskSpace(data, threshold=parse_threshold(settings.min_free_disk))
        self.artifacts = ArtifactStore(data / "artifacts")
        self.sandbox = Sandbox(
            data,
            node_tag(data),
            root_dir=Path(settings.sandbox_dir) if settings.sandbox_dir else None,
            max_processes=settings.max_processes,
            shared=(settings.resolved_node_sdk_dir,),
        )
        self.sandbox.start(enabled=settings.sandbox)
        self.builder = Builder(self.sandbox.envs_dir() or data / "envs")
        self.deployer = Deployer(
            self.store,
            self.artifacts,
            builder=self.builder,
            blobs=self.store.cluster if self.clustered else None,
        )
        self.executor = ProcessExecutor(
            work_dir=data / "run",
            node_sdk=settings.resolved_node_sdk_dir,
            idle_ttl=settings.idle_ttl,
            memory_capacity=settings.memory_capacity,
            sandbox=self.sandbox,
        )
        self.metrics = Metrics(pool_stats=self.executor.pool_stats, groups=self.bus.groups)
        self.recorder = Recorder(self.store, metrics=self.metrics)
        prices = Prices(settings.price_per_request, settings.price_per_gb_second)
        self.costs = CostMeter(self.store, prices=prices)
        # When each token and key was last used, written at most once a minute each.
        self.last_use = LastUse(self.store)
        self.access_keys = AccessKeys(
            self.store,
            data / "access-keys.key",
            last_use=self.last_use,
            announce=self._announce_change,
        )
        # Secrets are sealed with the same key file (nodes of a cluster share it).
        self.secrets = SecretStore(self.store, data / "access-keys.key")
        # On a cluster the buckets live in the shared store, in its own transactions.
        shared = self.store.transactions if self.clustered else None
        self.buckets = BucketStore(
            data / "buckets",
            self.bus,
            database=shared,
            retention=settings.retention,
            region=settings.region,
        )
        # What the executor runs, resolved once per function and qualifier; the
        # application layer drops them after every change.
        self.specs = Specs(
            self.store,
            self.deployer,
            access_keys=self.access_keys,
            endpoint=settings.resolved_url,
            region=settings.region,
            secrets=self.secrets,
            retire=self.executor.retire,
        )
        # Durable executions (docs/durable.md): every invocation goes through their
        # executor, which runs a durable function's invocation as one of an execution.
        self.durable = DurableExecutions(
            DurableStore(*self.store.transactions),
            version_of=self.store.get_version,
            publish=lambda function, payload: self.invoker.invoke_async(function, payload),
            invoke=self._chained_invoke,
            leading=lambda: not self.clustered or self.leader.held,
            region=settings.region,
            account=ACCOUNT,
            shared=self.clustered,
        )
        self.durable_executor = DurableExecutor(
            self.executor, self.durable, resolve=self.specs.resolve
        )
        # Named brokers that emits and destinations may target, one relay each.
        self.sinks = Sinks(self.bus, self.store, retention=settings.retention)
        self.emitter = Emitter(
            self.bus, known_broker=self.sinks.known, destinations_of=self.specs.destinations_of
        )
        # OpenTelemetry spans (docs/tracing.md); None when no endpoint is set.
        self.tracer = open_tracer(settings)
        self.tokens = TokenRegistry(
            self.store, settings.token_path, last_use=self.last_use, announce=self._announce_change
        )
        self.dispatcher = Dispatcher(
            self.bus,
            self.durable_executor,
            store=self.store,
            resolve=self.specs.resolve,
            recorder=self.recorder,
            emitter=self.emitter,
            default_retention=settings.retention,
            lease_margin=settings.lease_margin,
            tracer=self.tracer,
            region=settings.region,
            # Ordered triggers run on one node at a time (dispatch/ordering.py).
            leases=self.store.cluster if self.clustered else None,
            holder=self.node_id,
            trigger_lease=settings.leader_lease,
            # Running nodes share each trigger's flow limits (dispatch/flow.py).
            nodes=(lambda: self.membership.live_nodes) if self.clustered else None,
        )
        self.invoker = Invoker(
            self.bus,
            self.durable_executor,
            resolve=self.specs.resolve,
            recorder=self.recorder,
            emitter=self.emitter,
            throttle_wait=settings.throttle_wait,
            sync_limit=settings.sync_payload_limit,
            async_limit=settings.async_payload_limit,
            json_depth_limit=settings.json_depth_limit,
            tracer=self.tracer,
        )
        self.source_process = (
            SourceProcess(
                self.bus,
                label=str(data.resolve()),
                log_level=settings.log_level,
                log_format=settings.log_format,
            )
            if settings.source_process
            else None
        )
        self.sources = SourceManager(
            self.bus,
            self.store,
            kinds=self.source_kinds(),
            data_dir=data,
            default_retention=settings.retention,
            leading=not self.clustered,
        )
        self.changes = ChangeWatcher(self.store.cluster, on_change=self._changed_elsewhere)
        self.control = Control(
            self.store,
            self.bus,
            specs=self.specs,
            deployer=self.deployer,
            dispatcher=self.dispatcher,
            sources=self.sources,
            executor=self.executor,
            sinks=self.sinks,
            secrets=self.secrets,
            retention=settings.retention,
            access_keys=self.access_keys,
            announce=self.changes.announce if self.clustered else None,
            warm_on_deploy=settings.warm_on_deploy,
        )
        self.leader = LeaderLease(
            self.store.cluster,
            name=LEADER,
            holder=self.node_id,
            ttl=settings.leader_lease,
            on_change=self.sources.lead,
        )
        # Automatic rollback of weighted aliases: on the leader of a cluster alone.
        self.releases = ReleaseWatcher(
            self.store,
            self.bus,
            aliases=self.control.aliases,
            leading=lambda: not self.clustered or self.leader.held,
            retention=settings.retention,
        )
        self.membership = Membership(
            self.store.cluster,
            node_id=self.node_id,
            address=settings.resolved_url,
            version=__version__,
            report=self._report,
        )
        # The records behind ``@idempotent``, which functions reach through the API.
        # Invocation records and the rest of what grows (control/retention.py).
        parts = node_parts(
            data,
            store_url=settings.resolved_store_url,
            store_file=store_file(self.store),
            bus_url=settings.resolved_bus_url,
            envs_dir=self.builder.root,
        )
        self.retention = Retention(
            self.store,
            records_retention=settings.records_retention,
            leading=lambda: not self.clustered or self.leader.held,
            builder=self.builder,
            artifacts=self.artifacts,
            buckets=self.buckets,
            sqlite_files=tuple(str(p.file) for p in parts if p.file is not None),
            vacuum=settings.sqlite_vacuum,
        )
        self.housekeeping = Housekeeping(
            self.bus,
            interval=settings.housekeeping_interval,
            idempotency=self.control.idempotency,
            retention=self.retention,
        )
        self.status = NodeStatus(
            data, parts, node_id=self.node_id, version=__version__, retention=self.retention
        )
        # Consistent copies of the data directory while the node serves (``backup``).
        self.backups = Backups(
            data, store_url=settings.resolved_store_url, bus_url=settings.resolved_bus_url
        )
        self.running = False
        self.stopping = False  # set when stop() begins: the node drains
        self.admin_token: str | None = None  # set when this start created it

    async def start(self) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        await self.disk.start()  # first: a node on a full disk says so in one line
        _keep_node_id(self.settings.data_dir, self.node_id)
        try:
            await _reach("store", self.settings.resolved_store_url, self.store.start)
            await _reach("bus", self.settings.resolved_bus_url, self.bus.start)
        except AdapterError as exc:
            space = self.disk.space()
            if not space.low:
                raise
            raise AdapterError(
                f"{exc} (the disk of the data directory is full: {space.describe()}; "
                "free some space and start again)"
            ) from exc
        await self.access_keys.start()
        await self.secrets.start()
        await self.buckets.start()
        self.admin_token = await self.tokens.start()
        await self.recorder.start()
        await self.executor.start()
        await self.sinks.start()
        await self.dispatcher.start()
        await self.durable.start()
        await self.sources.start()
        if self.clustered:
            await self.changes.start()
            await self.leader.start()
        await self.control.start()
        await self.housekeeping.start()
        await self.releases.start()
        await self.membership.start()
        if self.sandbox.uses_users:
            # Now that the databases and folders exist: functions' users pass through to
            # the sandbox's folder (when it lies in the data directory), nothing else.
            lock_data_dir(self.settings.data_dir, open_folders=("sandbox", "runtimes"))
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
        self.stopping = True
        await self.membership.drain()
        await self.housekeeping.stop()
        await self.durable.stop()
        await self.releases.stop()
        grace = self.settings.shutdown_grace
        await self.leader.stop()
        await self.changes.stop()
        await self.sources.stop()
        if self.source_process is not None:
            await self.source_process.stop()
        await self.dispatcher.stop(grace=grace)
        await self.sinks.stop()
        await self.executor.stop(grace=grace)
        if self.tracer is not None:
            await asyncio.to_thread(self.tracer.close)  # sends the spans still queued
        self.sandbox.close()
        await self.recorder.stop()
        await self.buckets.stop()
        await self.bus.stop()
        await self.membership.stop()
        await self.last_use.aclose()
        await self.store.stop()
        await self.disk.stop()
        gc.unfreeze()  # what the node held can be collected again

    def source_kinds(self) -> list[SourceKind]:
        """The kinds of trigger source this node runs besides topics; the broker kinds
        that run apart do so in the source process, unless the settings say not to."""
        process = self.source_process
        brokers: list[SourceKind] = [
            HostedKind(kind, process) if process is not None and kind.runs_apart else kind
            for kind in broker_kinds()
        ]
        schedules = ScheduleKind(region=self.settings.region)
        return [schedules, FilesKind(), HttpRouteKind(), BucketKind(self.buckets), *brokers]

    async def _chained_invoke(
        self, function: str, payload: bytes
    ) -> tuple[str | None, dict[str, Any] | None]:
        """Run ``function`` for a durable execution's ``context.invoke``."""
        result = await self.invoker.invoke(function, payload)
        if result.status == "ok":
            return (result.result or b"null").decode(), None
        document = result.error_document()
        return None, {"ErrorType": document["errorType"], "ErrorMessage": document["errorMessage"]}

    async def _changed_elsewhere(self) -> None:
        """Another node of the cluster changed functions, aliases, triggers or brokers,
        or revoked a token or key."""
        await self.tokens.reload()
        await self.control.invalidate_local()

    async def _announce_change(self) -> None:
        """Tell the other nodes of a cluster that a token or key was revoked."""
        if self.clustered:
            await self.changes.announce()

    def _report(self) -> dict[str, Any]:
        """What this node's heartbeat tells the others and ``triggerfish nodes``."""
        pools = self.executor.pool_stats()
        return {
            "warm": sum(p.idle + p.busy for p in pools),
            "busy": sum(p.busy for p in pools),
            "waiting": sum(p.waiting for p in pools),
            "leader": self.leader.held if self.clustered else True,
            "store": self.settings.resolved_store_url.partition(":")[0],
            "bus": self.settings.resolved_bus_url.partition(":")[0],
            "sandbox": str(self.sandbox.level),
        }


def open_tracer(settings: Settings) -> Tracer | None:
    """The tracer that sends spans to ``settings.otel_endpoint``; None when it is not
    set, and then OpenTelemetry is not even imported."""
    if not settings.otel_endpoint:
        return None
    from triggerfish.observe.otlp import otlp_tracer

    return otlp_tracer(settings.otel_endpoint, service_name=settings.otel_service_name)


async def reach_backends(settings: Settings) -> None:
    """Open the store and the bus of ``settings`` once and close them again: run before
    a server starts, so one that cannot be reached stops it with one line naming it."""
    vacuum = settings.sqlite_vacuum  # a file made here is made as the node would
    store = SqlStore(database_url(settings.resolved_store_url), vacuum=vacuum)
    await _reach("store", settings.resolved_store_url, store.start)
    await store.stop()
    bus = open_bus(settings.resolved_bus_url, dedupe_window=settings.dedupe_window, vacuum=vacuum)
    await _reach("bus", settings.resolved_bus_url, bus.start)
    await bus.stop()


def _node_id(data: Path) -> str:
    """This node's id: kept in the data directory, so a restarted node is the same."""
    try:
        kept = (data / "node.id").read_text().strip()
    except OSError:
        kept = ""
    return kept or uuid.uuid4().hex[:12]


def _keep_node_id(data: Path, node_id: str) -> None:
    path = data / "node.id"
    if not path.exists():
        # On a full disk the node starts all the same, under a new id next time.
        with contextlib.suppress(OSError):
            path.write_text(node_id + "\n")


async def _reach(what: str, url: str, start: Callable[[], Awaitable[None]]) -> None:
    """Start the store or the bus; one that cannot be reached stops the node with a
    message naming which URL failed and why."""
    try:
        await start()
    except (AdapterError, OSError) as exc:
        raise AdapterError(f"cannot reach the {what} at {redact_url(url)}: {exc}") from exc
