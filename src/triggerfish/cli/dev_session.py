"""The session of one ``triggerfish dev`` (``cli/dev.py``): the watch, redeploy and
follow loops, and the server that stops them before the node drains."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import uvicorn
from rich.markup import escape
from watchfiles import DefaultFilter, awatch

from triggerfish.cli.output import console
from triggerfish.cli.serving import Server
from triggerfish.config import Settings
from triggerfish.errors import TriggerfishError
from triggerfish.functions.manifest import Manifest
from triggerfish.functions.project import load_project
from triggerfish.ids import new_id
from triggerfish.node import Node
from triggerfish.store.records import InvocationRecord

POLL = 0.2  # seconds between looks for new invocation records
STEP_MS = 30  # a save is taken once the files were quiet this long
# The platform's own lines of an invocation's log, left out of the live view.
PLATFORM_LINES = ("START RequestId:", "END RequestId:", "REPORT RequestId:", "INIT_START")


class DevServer(Server):
    """Stops watching and following before the node drains."""

    def __init__(self, config: uvicorn.Config, session: DevSession) -> None:
        super().__init__(config)
        self._session = session

    async def shutdown(self, sockets: list[object] | None = None) -> None:  # type: ignore[override]
        await self._session.stop()
        await super().shutdown(sockets)  # type: ignore[arg-type]


class DevSession:
    """The watch, redeploy and follow loops of one ``triggerfish dev``."""

    def __init__(self, target: str, manifest: Manifest, settings: Settings) -> None:
        self._target = target
        self._manifest = manifest
        self._settings = settings
        self._node: Node | None = None
        self._deployed: set[str] = set()
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, node: Node) -> None:
        self._node = node
        cursor = new_id()  # invocations from now on
        await self._deploy(self._manifest, first=True)
        # Commands given the same data directory find this server, as with ``up``.
        self._settings.server_url_path.write_text(self._settings.listen_url + "\n")
        url = self._settings.listen_url
        console.print(
            f"Triggerfish dev is up at {url}; the console: {url}/", markup=False, soft_wrap=True
        )
        folders = ", ".join(map(str, self._folders()))
        console.print(f"watching {folders}; Ctrl-C stops", markup=False, soft_wrap=True)
        self._tasks = [
            asyncio.create_task(self._watch(), name="dev:watch"),
            asyncio.create_task(self._follow(cursor), name="dev:follow"),
        ]

    async def stop(self) -> None:
        self._stopping.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- deploys ------------------------------------------------------------------------

    async def _deploy(self, manifest: Manifest, *, first: bool = False) -> None:
        assert self._node is not None
        control = self._node.control
        try:
            started = time.perf_counter()
            results = await control.deploy_manifest(manifest)
            took = (time.perf_counter() - started) * 1000
            for result in results:
                self._deployed.add(result.function)
                if first or result.created:
                    verb = "deployed" if first else "redeployed"
                    console.print(
                        f"[green]{verb}[/] {escape(result.function)} version {result.number}"
                        f" ({result.version})"
                    )
                for note in result.notes:
                    console.print(f"{result.function}: {note}", markup=False, soft_wrap=True)
            console.print(f"deployed in {took:.0f} ms", style="dim")
            for name in sorted(self._deployed - set(manifest.functions)):
                await control.functions.delete(name)
                self._deployed.discard(name)
                console.print(f"[yellow]removed[/] {escape(name)} (no longer in the project)")
        except TriggerfishError as exc:
            console.print(f"[red]deploy failed[/]: {escape(str(exc))}")
            console.print("the running version stays until the next save", style="dim")
            return
        self._manifest = manifest

    def _folders(self) -> list[Path]:
        manifest = self._manifest
        folders = {manifest.root.resolve()}
        for name in manifest.functions:
            folders.add(manifest.code_dir(name).resolve())
            folders.update(folder.resolve() for folder in manifest.layer_dirs(name))
        # A folder inside another is watched through it.
        return sorted(
            f for f in folders if not any(f.is_relative_to(o) and f != o for o in folders)
        )

    async def _watch(self) -> None:
        data_dir = self._settings.data_dir.resolve()
        ignore = DefaultFilter(
            ignore_dirs=(*DefaultFilter.ignore_dirs, ".triggerfish"),
            ignore_paths=[data_dir],
        )
        while not self._stopping.is_set():
            folders = self._folders()
            async for changes in awatch(
                *folders, watch_filter=ignore, step=STEP_MS, stop_event=self._stopping
            ):
                names = sorted({Path(p).name for _, p in changes})
                console.print(f"changed: {', '.join(names)}", style="dim", markup=False)
                try:
                    manifest = await asyncio.to_thread(load_project, self._target)
                except TriggerfishError as exc:
                    console.print(f"[red]error[/]: {escape(str(exc))}")
                    console.print("the running version stays until the next save", style="dim")
                    continue
                await self._deploy(manifest)
                if self._folders() != folders:
                    break  # watch the project's folders as they are now

    # -- the live view ------------------------------------------------------------------

    async def _follow(self, cursor: str) -> None:
        assert self._node is not None
        invocations = self._node.control.invocations
        while not self._stopping.is_set():
            try:
                records = await invocations.search(after=cursor, limit=100)
            except TriggerfishError as exc:
                console.print(f"[red]cannot read invocations[/]: {escape(str(exc))}")
                records = []
            for record in records:
                cursor = record.recorded_id
                show(record)
            if len(records) < 100:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), POLL)


def show(record: InvocationRecord) -> None:
    """One invocation and its own log lines."""
    at = time.strftime("%H:%M:%S", time.localtime(record.started_at))
    style = "green" if record.status == "ok" else "red"
    cold = f", cold start {record.init_duration_ms or 0:.0f} ms" if record.cold_start else ""
    via = f" via {record.trigger}" if record.trigger else ""
    attempt = f", attempt {record.attempt}" if record.attempt > 1 else ""
    console.print(
        f"{at} [bold]{escape(record.function)}[/] v{escape(record.version[:8])}{escape(via)}"
        f" [{style}]{record.status}[/] {record.duration_ms:.1f} ms{cold}{attempt}"
    )
    for line in record.logs.splitlines():
        if line.strip() and not line.startswith(PLATFORM_LINES):
            console.print(f"  │ {line}", markup=False, highlight=False)
    if record.status != "ok":
        error = f"{record.error_type or record.status}: {record.error_message or ''}"
        console.print(f"  ✗ {error}", style="red", markup=False, highlight=False)
