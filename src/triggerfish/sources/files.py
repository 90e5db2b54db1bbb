"""Files: a ``files:`` trigger watches a folder and turns changes into events.

For local automation on the machine that runs Triggerfish: each file created, modified
or deleted under the folder (sub-folders too unless ``recursive: false``, names matching
``glob`` when given) becomes one event of type ``triggerfish.file.created`` /
``.modified`` / ``.deleted`` whose subject is the path relative to the folder. Changes
that come in a burst are grouped per file: a file written then changed reports
``created`` once. Changes made while the server is down are not seen, and folders
themselves make no events (a deleted folder may, as its kind is gone with it).

The path of the folder is absolute once stored: ``load_manifest`` resolves it against
the manifest's folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
from collections.abc import AsyncGenerator, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import watchfiles
from pydantic import ValidationError as PydanticValidationError

from triggerfish.errors import ConfigError, TriggerfishError
from triggerfish.events.create import new_event
from triggerfish.events.model import Event
from triggerfish.functions.triggers import FileChange, FilesOptions
from triggerfish.sources.base import Source, SourceContext

log = logging.getLogger("triggerfish.sources.files")

EVENT_TYPE = "triggerfish.file."  # + created, modified or deleted
_READY_TIMEOUT = 10.0  # seconds start() waits for the watcher to be in place


class FilesKind:
    """The ``files`` trigger source."""

    name = "files"

    def __init__(self, *, debounce_ms: int = 400, idle_ms: int = 200) -> None:
        self.debounce_ms = debounce_ms  # most time one burst of changes is grouped over
        self.idle_ms = idle_ms  # how often the watcher reports that nothing happened

    def validate(self, options: Mapping[str, Any], *, where: str) -> None:
        try:
            config = FilesOptions.model_validate(dict(options))
        except PydanticValidationError as exc:
            raise ConfigError(f"{where}: {exc.errors()[0]['msg']}") from None
        folder = Path(config.path)
        if not folder.is_absolute():
            raise ConfigError(
                f"{where}.path: expected an absolute folder path, got {config.path!r} "
                "(paths in triggerfish.yaml are made absolute when the manifest is read)"
            )
        if not folder.is_dir():
            raise ConfigError(f"{where}.path: the folder {folder} does not exist on the server")

    def create(self, context: SourceContext) -> Source:
        return FilesSource(context, self)


class FilesSource:
    def __init__(self, context: SourceContext, kind: FilesKind) -> None:
        self._context = context
        self._kind = kind
        self.options = FilesOptions.model_validate(dict(context.options))
        self.folder = Path(self.options.path).resolve()
        self._stop = asyncio.Event()
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def source(self) -> str:
        return f"triggerfish://files/{self._context.trigger_id}"

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"files {self._context.trigger_id}")
        # The watcher reports once it is in place (at the latest after idle_ms), so a
        # change made after start() returns is seen.
        ready = asyncio.create_task(self._ready.wait())
        await asyncio.wait(
            {ready, self._task}, timeout=_READY_TIMEOUT, return_when="FIRST_COMPLETED"
        )
        ready.cancel()
        if self._task.done():
            self._task.result()  # the watcher could not start: raise why

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                async for changes in self._watch():
                    self._ready.set()
                    events = self.events(changes)
                    if events:
                        await self._publish(events)
            except (OSError, RuntimeError) as exc:
                if not self._ready.is_set():
                    raise
                log.warning("files %s: watching %s failed (%s); watching again",
                            self._context.trigger_id, self.folder, exc)  # fmt: skip
                await asyncio.sleep(1.0)

    def _watch(self) -> AsyncGenerator[set[tuple[watchfiles.Change, str]], None]:
        return watchfiles.awatch(
            self.folder,
            recursive=self.options.recursive,
            debounce=self._kind.debounce_ms,
            stop_event=self._stop,
            rust_timeout=self._kind.idle_ms,
            yield_on_timeout=True,
        )

    async def _publish(self, events: list[Event]) -> None:
        while True:
            try:
                await self._context.bus.publish(self._context.topic, events)
                return
            except TriggerfishError:
                log.exception("files %s: publishing failed; retrying", self._context.trigger_id)
                await asyncio.sleep(1.0)

    def events(self, changes: Iterable[tuple[watchfiles.Change, str]]) -> list[Event]:
        """One event per file changed, in path order, for the changes this trigger wants."""
        by_path: dict[str, set[watchfiles.Change]] = {}
        for raw_change, raw_path in changes:
            by_path.setdefault(raw_path, set()).add(raw_change)
        out = []
        for path_text in sorted(by_path):
            path = Path(path_text)
            change = _change_of(path, by_path[path_text])
            if change is None or change not in self.options.events:
                continue
            try:
                relative = path.relative_to(self.folder).as_posix()
            except ValueError:
                continue
            if not self._wanted(relative):
                continue
            out.append(self._event(path, relative, change))
        return out

    def _wanted(self, relative: str) -> bool:
        if not self.options.recursive and "/" in relative:
            return False
        pattern = self.options.glob
        if pattern is None:
            return True
        subject = relative if "/" in pattern else relative.rsplit("/", 1)[-1]
        return fnmatch.fnmatchcase(subject, pattern)

    def _event(self, path: Path, relative: str, change: FileChange) -> Event:
        data: dict[str, Any] = {
            "path": str(path),
            "relative_path": relative,
            "name": path.name,
            "change": change,
            "folder": str(self.folder),
        }
        if change != "deleted":
            with contextlib.suppress(OSError):
                stat = path.stat()
                data["size"] = stat.st_size
                data["modified"] = (
                    datetime.fromtimestamp(stat.st_mtime, UTC).isoformat().replace("+00:00", "Z")
                )
        return new_event(EVENT_TYPE + change, self.source, data, subject=relative)


def _change_of(path: Path, changes: set[watchfiles.Change]) -> FileChange | None:
    """What a burst of changes to one path amounts to, judged by what is there now."""
    if not path.exists():
        return "deleted"
    if path.is_dir():
        return None
    if watchfiles.Change.added in changes:
        return "created"
    return "modified"
