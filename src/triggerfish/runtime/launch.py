"""Starting the executor's environments, within the node's memory budget.

A ``Launcher`` holds what environments are started from and paid with: the
``WorkerOptions``, the zygotes, the snapshot templates' lifetime, the pre-started
Node.js processes and the ``MemoryBudget``. The ``ProcessExecutor`` owns one and calls
it for every environment it starts or discards; the pools, and which of them still
take environments (``live``), stay the executor's.

- Memory: an environment holds its function's memory size from the moment its start
  begins until it is discarded, busy or idle (``reserve``, ``discard``). When the
  budget cannot hold one more, idle environments of any version are evicted to make
  room, least recently used first and never below a version's ``min_warm``, but only
  when that makes enough room; otherwise the invocation waits (``start_or_wait``)
  until memory comes free or an environment goes idle (``wake``), or its caller's
  wait runs out (it is then answered ``throttled``).
- Starting: Python environments are forked from a zygote per interpreter
  (``zygote.py``), or from a per-version snapshot template for ``snapstart`` functions
  (``snapshot.py``; a template that died is replaced once, one unused for
  ``snapshot_ttl`` is closed), and fall back to a fresh interpreter when no zygote can
  be had. Node.js environments start from a pre-started
  ``node`` process when one is ready (``node/launcher.py``); ``provided`` environments
  are a relay in front of the function's ``bootstrap`` (``provided/relay.py``). A start
  that fails gives its memory back, and an environment whose init failed is discarded.
  The first environment forked from a new snapshot template reports the template's
  init as its own.
- Provisioned concurrency: ``top_up`` starts environments in the background until a
  version has ``min_warm``, as far as the budget holds them without evicting anything.
  Their init ran ahead of any invocation, so their first invocation is not a cold start.

Discarded processes and templates are closed in background tasks, which ``settle``
waits for. Once the executor's grace for stopping ran out (``killing``), an
environment that finishes starting is discarded at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any

from triggerfish.runtime.base import (
    FunctionSpec,
    InvocationRequest,
    InvocationResult,
    runtime_family,
)
from triggerfish.runtime.budget import MemoryBudget
from triggerfish.runtime.environment import Exit, WorkerOptions
from triggerfish.runtime.node.launcher import NodeLauncher
from triggerfish.runtime.pool import Pool
from triggerfish.runtime.protocol import InitFailed, Invoke, Ready
from triggerfish.runtime.results import failure, init_failure, throttled
from triggerfish.runtime.snapshot import Template, create_template
from triggerfish.runtime.worker import Worker
from triggerfish.runtime.zygote import ForkServerGone, Zygotes

log = logging.getLogger("triggerfish.runtime")

Started = Worker | InitFailed | Exit | OSError


class Launcher:
    """Starts and discards environments, and keeps the memory they hold."""

    def __init__(
        self,
        options: WorkerOptions,
        pools: Mapping[str, Pool],
        *,
        live: Callable[[Pool], bool],
        memory_capacity: int = 0,
        snapshot_ttl: float = 3600.0,
        zygote: bool = True,
        node_spares: bool = True,
        node_sdk: Path | None = None,
        spare_ttl: float = 300.0,
    ) -> None:
        """``pools``: the executor's, by version; idle environments of any of them may
        be evicted. ``live(pool)``: ``pool`` still takes environments (the executor is
        not stopping and the pool still serves its version)."""
        self.options = options
        self.budget = MemoryBudget(memory_capacity)
        self.snapshot_ttl = snapshot_ttl
        self.zygotes = Zygotes(timeout=max(options.init_timeout, 10.0)) if zygote else None
        sandbox = options.sandbox
        identity = None if sandbox is None or not sandbox.uses_users else sandbox.identity
        # A pre-started Node.js cannot fence itself for the function it will serve.
        spares = node_spares and not (sandbox is not None and sandbox.fences)
        self.node = NodeLauncher(
            spares=spares, spare_ttl=spare_ttl, identity=identity, sdk=node_sdk
        )
        self.waiters: list[asyncio.Future[None]] = []  # invocations waiting for memory
        self.killing = False
        self._pools = pools
        self._live = live
        self._background: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self.killing = False
        if self.zygotes is not None:
            # The first cold start should cost a fork, not a zygote's start.
            await self.zygotes.get(self.options.python)

    async def settle(self) -> None:
        """Wait for the background tasks (and those they start) to finish."""
        while self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    async def stop(self) -> None:
        """Stop the zygotes and the pre-started Node.js processes."""
        if self.zygotes is not None:
            await self.zygotes.close()
        self.node.close()

    def background(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def reserve(self, spec: FunctionSpec) -> bool:
        """Hold memory for one more environment of ``spec``, evicting idle environments
        of any version (least recently used first, never below ``min_warm``) when that
        makes enough room."""
        budget = self.budget
        if budget.try_reserve(spec.memory):
            return True
        spare: list[tuple[float, Pool, Worker]] = []
        for pool in self._pools.values():
            count = max(0, pool.environments - pool.spec.min_warm)
            spare.extend((worker.last_used, pool, worker) for worker in pool.idle[:count])
        if budget.free + sum(worker.reserved_mb for _, _, worker in spare) < spec.memory:
            return False
        spare.sort(key=lambda entry: entry[0])
        for _, pool, worker in spare:
            if budget.free >= spec.memory:
                break
            pool.idle.remove(worker)
            self.discard(worker)
        return budget.try_reserve(spec.memory)

    async def start_or_wait(
        self,
        pool: Pool,
        spec: FunctionSpec,
        request: InvocationRequest,
        message: Invoke,
        deadline: float | None,
    ) -> Worker | InvocationResult | None:
        """A new environment for an invocation (``message`` queued behind its init), or
        the result that ends the invocation: its memory size is over the node's
        capacity, its environment did not start, or no memory came free by ``deadline``.
        None: it waited for memory until some may have come free, an environment went
        idle or ``deadline`` came; look again."""
        capacity = self.budget.capacity
        if spec.memory > capacity:
            return failure(
                spec,
                request,
                "error",
                "Runtime.InsufficientMemory",
                f"Memory Size {spec.memory} MB is over this node's memory capacity"
                f" of {capacity} MB",
            )
        loop = asyncio.get_running_loop()
        remaining = None if deadline is None else deadline - loop.time()
        if pool.warming > pool.waiting_warm and (remaining is None or remaining > 0):
            # An environment started ahead of demand is on its way (a deploy's, or
            # min_warm's): it is ready sooner than a new one would be.
            pool.waiting_warm += 1
            try:
                await self._wait(remaining)
            finally:
                pool.waiting_warm -= 1
            return None
        if self.reserve(spec):
            pool.starting += 1
            try:
                started = await self.start_worker(pool, spec, "on-demand", message)
            finally:
                pool.starting -= 1
            if isinstance(started, Worker):
                pool.cold_starts += 1
                return started
            if isinstance(started, OSError):
                return failure(
                    spec, request, "error", "Runtime.StartError", f"Cannot start: {started}"
                )
            return init_failure(spec, request, started, self.options.init_timeout)
        if remaining is not None and remaining <= 0:
            return throttled(
                spec,
                request,
                f"Rate exceeded: no memory for another environment of '{spec.function}'"
                f" ({spec.memory} MB; node capacity {capacity} MB in use)",
            )
        pool.waiting_memory += 1
        try:
            await self._wait(remaining)
        finally:
            pool.waiting_memory -= 1
        return None

    async def _wait(self, remaining: float | None) -> None:
        """Until ``wake`` (memory came free, an environment went idle or did not start)
        or ``remaining`` seconds."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            async with asyncio.timeout(remaining):
                await waiter
        except TimeoutError:
            pass
        finally:
            with contextlib.suppress(ValueError):
                self.waiters.remove(waiter)

    def wake(self) -> None:
        """Memory came free or an environment went idle: waiters look again."""
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def discard(self, worker: Worker) -> None:
        """Kill ``worker`` and give its memory back; it is closed in the background."""
        worker.kill()
        if worker.reserved_mb:
            self.budget.release(worker.reserved_mb)
            worker.reserved_mb = 0
            if self.waiters:
                self.wake()
        self.background(worker.close())

    async def start_worker(
        self, pool: Pool, spec: FunctionSpec, init_type: str, first: Invoke | None = None
    ) -> Started:
        """Start and initialise one environment (with ``first`` queued behind its init);
        its memory is already reserved, and is released here when the start fails."""
        try:
            launched = await self._launch(pool, spec, init_type, first)
        except BaseException:
            self._release(spec.memory)
            raise
        if not isinstance(launched, tuple):
            self._release(spec.memory)
            return launched
        worker, inherited = launched
        worker.reserved_mb = spec.memory
        if self.killing:  # stop()'s grace ran out while the process was starting
            self.discard(worker)
            return Exit("stopped", None, "", time.time(), 0.0, 0)
        pool.launching.add(worker)
        try:
            ready = await worker.initialise()
        except BaseException:
            pool.launching.discard(worker)
            self.discard(worker)
            raise
        pool.launching.discard(worker)
        if not isinstance(ready, Ready):
            self.discard(worker)
            return ready
        if inherited is not None:  # the first environment of a new snapshot paid its init
            worker.pending_init = Ready(
                inherited.init_duration_ms + ready.init_duration_ms, inherited.logs + ready.logs
            )
        return worker

    def _release(self, mb: int) -> None:
        self.budget.release(mb)
        if self.waiters:
            self.wake()

    async def _launch(
        self, pool: Pool, spec: FunctionSpec, init_type: str, first: Invoke | None
    ) -> tuple[Worker, Ready | None] | InitFailed | Exit | OSError:
        options = self.options
        try:
            python = runtime_family(spec.runtime) == "python"
            if spec.snapstart and python and self.zygotes is not None:
                for _ in range(2):  # a template that died is replaced once
                    template, inherited = await self._template(pool, spec)
                    if template is None:
                        break
                    if not isinstance(template, Template):
                        return template
                    try:
                        worker = await Worker.start(
                            spec,
                            options,
                            init_type="snap-start",
                            template=template.server,
                            first=first,
                        )
                    except ForkServerGone:
                        continue
                    return worker, inherited
            worker = await Worker.start(
                spec,
                options,
                init_type=init_type,
                zygotes=self.zygotes,
                first=first,
                node=self.node,
            )
        except OSError as exc:
            return exc
        return worker, None

    async def _template(
        self, pool: Pool, spec: FunctionSpec
    ) -> tuple[Template | InitFailed | Exit | None, Ready | None]:
        template = pool.template
        if template is not None and template.alive:
            return template, None
        async with pool.template_lock:
            template = pool.template
            if template is not None and template.alive:
                return template, None
            if template is not None:
                pool.template = None
                self.background(template.close())
            assert self.zygotes is not None
            created = await create_template(spec, self.options, self.zygotes)
            if not isinstance(created, Template):
                return created, None
            if not self._live(pool):
                self.background(created.close())
                return Exit("stopped", None, "", time.time(), 0.0, 0), None
            pool.template = created
            inherited = Ready(created.init_duration_ms, created.pending_logs)
            created.pending_logs = ""
            return created, inherited

    def expire_template(self, pool: Pool) -> None:
        """Close ``pool``'s snapshot template if it died, or if the pool has no
        environment and the template forked none for ``snapshot_ttl`` seconds."""
        template = pool.template
        if template is not None and (
            not template.alive
            or (
                pool.environments == 0
                and time.monotonic() - template.last_used >= self.snapshot_ttl
            )
        ):
            pool.template = None
            self.background(template.close())

    def top_up(self, pool: Pool) -> None:
        """Start environments in the background until ``min_warm`` exist (as far as the
        memory budget allows without evicting anything)."""
        if not self._live(pool):
            return
        spec = pool.spec
        for _ in range(spec.min_warm - pool.environments):
            if not self.budget.try_reserve(spec.memory):
                return
            pool.starting += 1
            pool.warming += 1
            self.background(self._prewarm(pool, spec))

    def warm_one(self, pool: Pool) -> bool:
        """Start one environment in the background for a version just deployed, so that
        its first call finds it ready (and a snapstart version its snapshot made), as
        far as the memory budget allows without evicting anything; nothing when the
        pool has or is starting one already. True when one is starting. It stops after
        its ``idle_ttl`` like any other, so a version nobody calls costs that long."""
        if not self._live(pool) or pool.environments:
            return False
        spec = pool.spec
        if not self.budget.try_reserve(spec.memory):
            return False
        pool.starting += 1
        pool.warming += 1
        self.background(self._prewarm(pool, spec, "on-demand"))
        return True

    async def _prewarm(
        self, pool: Pool, spec: FunctionSpec, init_type: str = "provisioned-concurrency"
    ) -> None:
        try:
            started = await self.start_worker(pool, spec, init_type)
        finally:
            pool.starting -= 1
            pool.warming -= 1
        if not isinstance(started, Worker):
            self.wake()  # whoever waited for it starts one of their own
            log.warning(
                "%s: an environment started ahead of demand did not start: %s",
                spec.key,
                _describe(started),
            )
            return
        started.pending_init = None  # its init ran ahead of any invocation
        if self._live(pool):
            pool.prewarmed += 1
            pool.idle.append(started)
        else:
            self.discard(started)
        self.wake()  # whoever waited for it takes it, or looks again


def _describe(outcome: InitFailed | Exit | OSError) -> str:
    if isinstance(outcome, InitFailed):
        return f"{outcome.error_type}: {outcome.error_message}"
    if isinstance(outcome, Exit):
        return f"{outcome.reason}: {outcome.describe()}"
    return str(outcome)


__all__ = ["Launcher", "Started"]
