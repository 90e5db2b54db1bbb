"""Broker sources run in a process of their own, and the node commits their events.

``SourceProcess`` starts ``triggerfish.sources.host`` when the node's first broker
trigger starts and stops it when the last one stops, so a node without broker
triggers runs no such process. It commits each batch the process publishes to the bus
and answers once the events are durable; the process acknowledges the broker's
messages only then (see ``triggerfish.sources.host``). If the process dies, the node
starts it again with backoff and gives it every source again; the brokers deliver
again what was not acknowledged. If the node dies, the process sees its socket close
and exits.

``HostedKind`` wraps a ``BrokerKind`` so that the ``SourceManager`` runs its sources
there: options are still checked in the node, at deploy and at start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from triggerfish.bus.base import Bus
from triggerfish.events.model import decode_event
from triggerfish.sources.base import Source, SourceContext
from triggerfish.sources.brokers.base import BrokerKind, SourceStats, backoff_delay
from triggerfish.sources.brokers.urls import redact_url
from triggerfish.sources.link import Committed, Link, Publish, Start, Stats, Stop, Stopped, ToNode
from triggerfish.tasks import cancel_task

log = logging.getLogger("triggerfish.sources")

STOP_WAIT = 10.0  # seconds for a source, or the process, to stop when asked
HEALTHY_AFTER = 10.0  # a process that lived this long resets the restart backoff


class SourceProcess:
    def __init__(
        self, bus: Bus, *, label: str, log_level: str = "info", log_format: str = "text"
    ) -> None:
        self._bus = bus
        self._label = label  # on the process's command line, to tell nodes apart
        self._log_level = log_level
        self._log_format = log_format
        self._sources: dict[str, Start] = {}
        self._stats: dict[str, dict[str, Any]] = {}
        self._stopped: dict[str, asyncio.Future[None]] = {}
        self._commits: set[asyncio.Task[None]] = set()
        self._link: Link | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self.starts = 0  # processes started, restarts included

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def stats(self, trigger_id: str) -> dict[str, Any] | None:
        """The latest counters the process reported for this trigger's source."""
        return self._stats.get(trigger_id)

    async def add(self, start: Start) -> None:
        self._sources[start.trigger_id] = start
        if self._supervisor is None:
            self._supervisor = asyncio.create_task(self._supervise(), name="source process")
        elif self._link is not None:
            self._link.send(start)

    async def remove(self, trigger_id: str) -> None:
        if self._sources.pop(trigger_id, None) is None:
            return
        self._stats.pop(trigger_id, None)
        link = self._link
        if link is not None and not link.closed:
            stopped = asyncio.get_running_loop().create_future()
            self._stopped[trigger_id] = stopped
            link.send(Stop(trigger_id))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopped, STOP_WAIT)
            self._stopped.pop(trigger_id, None)
        if not self._sources:
            await self.stop()

    async def stop(self) -> None:
        """Stop the process (its sources stop acknowledging) and wait for it."""
        supervisor, self._supervisor = self._supervisor, None
        await cancel_task(supervisor)

    async def _supervise(self) -> None:
        failures = 0
        while True:
            began = time.monotonic()
            try:
                code = await self._serve()
            except Exception:
                code = None
                log.exception("the source process failed")
            if time.monotonic() - began > HEALTHY_AFTER:
                failures = 0
            delay = backoff_delay(0.2, 10.0, failures)
            failures += 1
            log.warning(
                "the source process ended (exit code %s); starting it again in %.1f s",
                code, delay,
            )  # fmt: skip
            await asyncio.sleep(delay)

    async def _serve(self) -> int | None:
        """Run one process until it ends; its exit code."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        argv = [sys.executable, "-m", "triggerfish.sources.host", str(theirs.fileno())]
        # The process imports Triggerfish (and the drivers) from where this node did.
        path = os.pathsep.join(entry for entry in sys.path if entry)
        try:
            process = subprocess.Popen(  # noqa: ASYNC220 - a fork/exec of a few ms
                [*argv, self._log_level, self._label],
                env={**os.environ, "PYTHONPATH": path, "TRIGGERFISH_LOG_FORMAT": self._log_format},
                stdin=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
                start_new_session=True,  # a Ctrl-C reaches the node, which stops it in order
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self._process = process
        self.starts += 1
        link: Link | None = None
        try:
            link = await Link.open(ours, ToNode)
            self._link = link
            for start in self._sources.values():
                link.send(start)
            while (message := await link.receive()) is not None:
                self._received(link, message)
        finally:
            self._link = None
            self._stats = {}
            if link is not None:
                link.close()
            else:
                ours.close()
            for stopped in self._stopped.values():
                if not stopped.done():
                    stopped.set_result(None)
            await self._finish_commits()
            await _reap(process)
        return process.returncode

    def _received(self, link: Link, message: ToNode) -> None:
        if isinstance(message, Publish):
            task = asyncio.create_task(self._commit(link, message))
            self._commits.add(task)
            task.add_done_callback(self._commits.discard)
        elif isinstance(message, Stats):
            self._stats = {str(stats["trigger"]): stats for stats in message.sources}
        elif isinstance(message, Stopped):
            stopped = self._stopped.get(message.trigger_id)
            if stopped is not None and not stopped.done():
                stopped.set_result(None)

    async def _commit(self, link: Link, message: Publish) -> None:
        try:
            events = [decode_event(body) for body in message.events]
            await self._bus.publish(message.topic, events)
        except Exception as exc:
            link.send(Committed(message.request, f"{type(exc).__name__}: {exc}"))
        else:
            link.send(Committed(message.request))

    async def _finish_commits(self) -> None:
        """Let commits in flight end (their events become durable or not), so the bus
        is not stopped under them; nobody acknowledges them any more."""
        if self._commits:
            await asyncio.wait(list(self._commits), timeout=STOP_WAIT)


async def _reap(process: subprocess.Popen[bytes]) -> None:
    """Wait for ``process`` to exit once its link is closed; kill it if it lingers."""
    deadline = time.monotonic() + STOP_WAIT
    while process.poll() is None:
        if time.monotonic() > deadline:
            log.warning("the source process did not stop within %.0f s; killing it", STOP_WAIT)
            process.kill()
            await asyncio.to_thread(process.wait)
            return
        await asyncio.sleep(0.02)


class HostedSource:
    def __init__(self, process: SourceProcess, start: Start, default: dict[str, Any]) -> None:
        self._process = process
        self._start = start
        self._default = default

    async def start(self) -> None:
        await self._process.add(self._start)

    async def stop(self) -> None:
        await self._process.remove(self._start.trigger_id)

    def stats(self) -> dict[str, Any]:
        return self._process.stats(self._start.trigger_id) or self._default


class HostedKind:
    """A broker kind whose sources run in the node's ``SourceProcess``."""

    def __init__(self, kind: BrokerKind[Any], process: SourceProcess) -> None:
        self.name = kind.name
        self._kind = kind
        self._process = process

    def validate(self, options: Mapping[str, Any], *, where: str) -> None:
        self._kind.validate(options, where=where)

    def one_per_cluster(self, options: Mapping[str, Any]) -> bool:
        return self._kind.one_per_cluster(options)

    def create(self, context: SourceContext) -> Source:
        options = self._kind.parse(context.options, where=f"trigger {context.trigger_id}: source")
        start = Start(
            context.trigger_id,
            self.name,
            context.topic,
            dict(context.options),
            dict(context.config),
            str(context.data_dir),
        )
        kind = self._kind.source_class.kind
        default = asdict(SourceStats(kind, context.trigger_id, redact_url(options.url)))
        return HostedSource(self._process, start, default)
