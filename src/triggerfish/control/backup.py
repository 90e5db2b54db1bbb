"""Backups of a running node, and the manifest that describes one.

``Backups.run`` copies what a node keeps in its data directory into an empty folder
while the node goes on serving: each SQLite database through SQLite's online backup
(a snapshot of one moment, taken while writers carry on in WAL mode), and the files
(code packages, bucket blobs, keys) as they are, since none of them is ever rewritten
in place. A ``manifest.json`` written last lists every file with its size and SHA-256,
the Triggerfish version, and what was not copied and why; a folder without one is an
unfinished backup, which ``restore`` refuses.

The order keeps every reference in the copy pointing at something the copy holds:

1. ``store.db``: functions, versions, aliases, triggers, tokens, access keys, secrets.
2. The code packages (``artifacts/<digest>.zip``): a version row is written after its
   package, so every version in the store's snapshot finds its code.
3. The buckets: every blob file first, then the index (``buckets/index.db``), then the
   blobs the index names that appeared meanwhile. A blob is written before the index
   row naming it and removed only after that row changed, so only a blob replaced in
   the short gap between the index snapshot and the second pass can be missing; the
   index is then taken again. Blobs copied but no longer named are removed by the
   restored node when it starts.
4. ``bus.db``, after the store and the bucket index: the topics those name exist in
   it, and an object change whose notification left the index's outbox is in the
   bus's snapshot (one still in the outbox may be delivered twice: at least once).
5. Other databases, then the key that seals access keys and secrets, the admin token
   and the node's id.

With a PostgreSQL store or a NATS bus those databases are not the node's to copy:
their own tools do it (docs/operations.md), and the manifest says so.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from triggerfish import __version__
from triggerfish.errors import ConflictError, ValidationError

MANIFEST = "manifest.json"
FORMAT = 1
STORE, BUS, INDEX = "store.db", "bus.db", "buckets/index.db"
KEY_FILES = ("access-keys.key", "admin.token", "node.id")
ARTIFACTS, BLOBS = "artifacts", "buckets/blobs"
#: Attempts at a bucket index whose blobs are all in the copy, when objects keep
#: being replaced while it is taken.
INDEX_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class BackupFile:
    path: str  # relative to the backup folder, with '/'
    size: int
    sha256: str


@dataclass(slots=True)
class BackupReport:
    path: str
    version: str
    created_at: float
    seconds: float = 0.0
    files: list[BackupFile] = field(default_factory=list)
    not_copied: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


class Backups:
    """Consistent copies of one node's data while it runs, one at a time."""

    def __init__(self, data_dir: Path, *, store_url: str, bus_url: str) -> None:
        self.data_dir = Path(data_dir)
        self._store = _sqlite_path(store_url)
        self._bus = _sqlite_path(bus_url)
        self._store_url = store_url
        self._bus_url = bus_url
        self._lock = asyncio.Lock()

    async def run(self, target: Path) -> BackupReport:
        """Copy the node into ``target`` (absolute; absent or an empty folder).
        ConflictError while another backup runs or when ``target`` holds anything."""
        if not target.is_absolute():
            raise ValidationError(
                f"backup path {str(target)!r} is relative: give an absolute path on the "
                "server's machine",
                field="path",
            )
        if self._lock.locked():
            raise ConflictError("a backup of this node is running; try again when it ends")
        async with self._lock:
            return await asyncio.to_thread(self._run, target)

    def _run(self, target: Path) -> BackupReport:
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            raise ConflictError(
                f"backup path {str(target)!r} exists and is not an empty folder: choose a new one"
            )
        created = not target.exists()
        try:
            target.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ValidationError(
                f"cannot create the backup folder {str(target)!r}: {exc.strerror}", field="path"
            ) from None
        started = time.monotonic()
        report = BackupReport(str(target), __version__, time.time())
        try:
            self._copy(target, report)
            report.seconds = round(time.monotonic() - started, 3)
            manifest = {"format": FORMAT, **report.as_dict()}
            (target / MANIFEST).write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
        except (OSError, sqlite3.Error) as exc:
            self._discard(target, created=created)
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ValidationError(
                f"cannot write the backup into {str(target)!r}: {reason}; nothing was kept "
                "there (check the space and permissions of that folder)",
                field="path",
            ) from exc
        except BaseException:
            self._discard(target, created=created)
            raise
        return report

    def _discard(self, target: Path, *, created: bool) -> None:
        """Remove what an unfinished backup wrote, and nothing else."""
        if created:
            shutil.rmtree(target, ignore_errors=True)
            return
        for entry in target.iterdir():
            shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink()

    def _copy(self, target: Path, report: BackupReport) -> None:
        done: set[Path] = set()
        if self._store is not None:
            report.files.append(_backup_db(self._store, target, STORE))
            done.add(self._store)
        else:
            report.not_copied.append(
                f"the store ({_redacted(self._store_url)}): functions, versions, aliases, "
                "triggers, tokens, access keys, secrets, invocation records and bucket "
                "objects; back it up with pg_dump or pg_basebackup"
            )
        report.files.extend(self._artifacts(target))
        index = self.data_dir / INDEX
        # With a PostgreSQL store the buckets live in it: the folder holds only uploads.
        if self._store is not None and index.exists():
            report.files.extend(self._buckets(index, target))
            done.add(index)
        if self._bus is not None:
            report.files.append(_backup_db(self._bus, target, BUS))
            done.add(self._bus)
        else:
            report.not_copied.append(
                f"the bus ({_redacted(self._bus_url)}): topics, their events and consumer "
                "positions; back up its streams with `nats stream backup`"
            )
        for other in sorted(self.data_dir.glob("*.db")):
            if other not in done and other.name not in (STORE, BUS):
                report.files.append(_backup_db(other, target, other.name))
        for name in KEY_FILES:
            source = self.data_dir / name
            if source.is_file():
                report.files.append(_copy_file(source, target, name))

    def _artifacts(self, target: Path) -> Iterator[BackupFile]:
        """The zip of every unpacked version (written before its folder appears)."""
        root = self.data_dir / ARTIFACTS
        if not root.is_dir():
            return
        for folder in sorted(root.iterdir()):
            package = root / f"{folder.name}.zip"
            if folder.is_dir() and not folder.name.startswith(".") and package.is_file():
                yield _copy_file(package, target, f"{ARTIFACTS}/{package.name}")

    def _buckets(self, index: Path, target: Path) -> list[BackupFile]:
        blobs = self.data_dir / BLOBS
        copied: dict[str, BackupFile] = {}
        for path in sorted(blobs.glob("*/*")) if blobs.is_dir() else ():
            name = f"{path.parent.name}/{path.name}"
            with _gone_ok():
                copied[name] = _copy_file(path, target, f"{BLOBS}/{name}")
        for _attempt in range(INDEX_ATTEMPTS):
            entry = _backup_db(index, target, INDEX)
            missing = _named_blobs(target / INDEX) - copied.keys()
            for name in sorted(missing):
                with _gone_ok():
                    copied[name] = _copy_file(blobs / name, target, f"{BLOBS}/{name}")
            if not missing - copied.keys():
                return [entry, *(copied[name] for name in sorted(copied))]
        raise ConflictError(
            "bucket objects kept being replaced while the backup ran; try again when "
            "writes to the buckets are fewer"
        )


def _sqlite_path(url: str) -> Path | None:
    scheme, sep, rest = url.partition("://")
    if sep and scheme.lower().startswith("sqlite") and rest.startswith("/") and len(rest) > 1:
        return Path(rest[1:])
    return None


def _redacted(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rpartition('@')[2]}"


def _backup_db(source: Path, target: Path, name: str) -> BackupFile:
    """A snapshot of the database at ``source`` as ``target/name``: SQLite's online
    backup in one step (so that writers on other connections do not make it start
    over), then turned out of WAL mode, so the copy is one self-contained file."""
    dest = target / name
    dest.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(source, timeout=30.0)
    try:
        out = sqlite3.connect(dest)
        try:
            src.backup(out)
            out.execute("PRAGMA journal_mode = DELETE")
        finally:
            out.close()
    finally:
        src.close()
    os.chmod(dest, 0o600)
    return BackupFile(name, dest.stat().st_size, _sha256(dest))


def _copy_file(source: Path, target: Path, name: str) -> BackupFile:
    dest = target / name
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    with source.open("rb") as read, dest.open("wb") as write:
        while chunk := read.read(1024 * 1024):
            digest.update(chunk)
            write.write(chunk)
            size += len(chunk)
    os.chmod(dest, 0o600)  # a backup holds every secret of the node
    return BackupFile(name, size, digest.hexdigest())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as read:
        while chunk := read.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _named_blobs(index: Path) -> set[str]:
    conn = sqlite3.connect(index)
    try:
        rows = conn.execute("SELECT blob FROM objects UNION SELECT blob FROM parts").fetchall()
    finally:
        conn.close()
    return {row[0] for row in rows}


class _gone_ok:
    """A blob removed between listing and copying (its object was replaced): skip it."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> bool:
        return kind is not None and issubclass(kind, FileNotFoundError)
