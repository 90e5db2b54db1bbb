"""``NodeStatus``: what ``triggerfish status`` and ``GET /v1/status`` show: the node,
how long it has run, the disk each part of its data uses, the free space left on the
data directory's filesystem, and what retention removes.

A part kept on a server (the store on PostgreSQL, the bus on NATS) uses no disk here
and says so (``bytes`` is None, ``where`` names the backend). Sizes are those of the
files (a SQLite database with its ``-wal`` and ``-shm``), measured off the event loop.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from triggerfish.control.retention import Retention


@dataclass(frozen=True, slots=True)
class Part:
    """A part of a node's data: a SQLite file (``file``), a folder (``folder``), or
    kept on a server (neither; ``where`` names it)."""

    name: str
    where: str
    file: Path | None = None
    folder: Path | None = None


def node_parts(
    data_dir: Path, *, store_url: str, store_file: str | None, bus_url: str, envs_dir: Path
) -> list[Part]:
    """The parts of a node's data, from its settings: the store and the bus (files, or
    the server they are kept on), buckets, artifacts and dependency environments."""
    bus_file = sqlite_path(bus_url)
    return [
        Part("bus", bus_url.partition(":")[0], file=bus_file),
        Part("store", store_url.partition(":")[0], file=Path(store_file) if store_file else None),
        Part("buckets", "data", folder=data_dir / "buckets"),
        Part("artifacts", "data", folder=data_dir / "artifacts"),
        Part("environments", "data", folder=envs_dir),
    ]


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///path`` URL (as the bus reads it); None for another."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme.lower() == "sqlite" and rest.startswith("/") and len(rest) > 1:
        return Path(rest[1:])
    return None


class NodeStatus:
    def __init__(
        self,
        data_dir: Path,
        parts: list[Part],
        *,
        node_id: str,
        version: str,
        retention: Retention | None = None,
        clock: Any = time.time,
    ) -> None:
        self._data_dir = data_dir
        self._parts = parts
        self._node_id = node_id
        self._version = version
        self._retention = retention
        self._clock = clock
        self.started_at = clock()

    async def snapshot(self) -> dict[str, Any]:
        disk = await asyncio.to_thread(self._measure)
        now = self._clock()
        return {
            "node": self._node_id,
            "version": self._version,
            "started_at": self.started_at,
            "uptime": now - self.started_at,
            "disk": disk,
            "retention": self._retention.to_json() if self._retention is not None else None,
        }

    def _measure(self) -> dict[str, Any]:
        parts = []
        for part in self._parts:
            size: int | None = None
            if part.file is not None:
                size = _file_size(part.file)
            elif part.folder is not None:
                size = _folder_size(part.folder)
            parts.append({"name": part.name, "where": part.where, "bytes": size})
        try:
            usage = shutil.disk_usage(self._data_dir)
            free: dict[str, int | None] = {
                "free_bytes": usage.free,
                "total_bytes": usage.total,
            }
        except OSError:
            free = {"free_bytes": None, "total_bytes": None}
        return {"parts": parts, **free}


def _file_size(path: Path) -> int:
    """A SQLite database's bytes, with its write-ahead log and shared memory."""
    total = 0
    for suffix in ("", "-wal", "-shm"):
        try:
            total += os.stat(f"{path}{suffix}").st_size
        except OSError:
            continue
    return total


def _folder_size(root: Path) -> int:
    """The bytes of the files under ``root`` (links not followed)."""
    total = 0
    stack = [str(root)]
    while stack:
        try:
            entries = os.scandir(stack.pop())
        except OSError:
            continue
        with entries:
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        total += entry.stat(follow_symlinks=False).st_size
                except OSError:
                    continue
    return total
