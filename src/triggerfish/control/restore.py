"""Restoring a backup (``control.backup``) into a data directory a node starts from.

``restore`` reads the backup's manifest, checks every file's size and SHA-256 before
it writes anything, then lays the files out as a node's data directory: the
databases and keys as they are, the code packages unpacked as the node would unpack
them at deploy. It never writes into a folder that holds anything unless told to
(``force``), and then replaces only what the backup holds. What the backup did not
copy (a PostgreSQL store, a NATS bus) is repeated in the report, with the tool that
restores it.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from triggerfish.control.backup import ARTIFACTS, BLOBS, BUS, FORMAT, INDEX, MANIFEST, STORE
from triggerfish.errors import ConflictError, ValidationError
from triggerfish.functions.artifacts import ArtifactStore


@dataclass(slots=True)
class RestoreReport:
    data_dir: str
    version: str
    created_at: float
    files: int = 0
    size: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    not_copied: list[str] = field(default_factory=list)


def read_manifest(backup: Path) -> dict[str, Any]:
    path = backup / MANIFEST
    try:
        manifest: dict[str, Any] = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise ValidationError(
            f"{backup} has no {MANIFEST}: it is not a Triggerfish backup, or one that did "
            "not finish; take a new one with `triggerfish backup`"
        ) from None
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ValidationError(f"cannot read {path}: {exc}") from None
    if manifest.get("format") != FORMAT:
        raise ValidationError(
            f"{path} is of backup format {manifest.get('format')!r}; this Triggerfish "
            f"reads format {FORMAT}"
        )
    return manifest


def verify(backup: Path, manifest: dict[str, Any]) -> None:
    """ValidationError naming every file that is missing or differs from the manifest."""
    bad = []
    for entry in manifest["files"]:
        path = backup / entry["path"]
        if not path.is_file():
            bad.append(f"{entry['path']} is missing")
        elif path.stat().st_size != entry["size"] or _sha256(path) != entry["sha256"]:
            bad.append(f"{entry['path']} differs from its checksum")
    if bad:
        raise ValidationError(
            f"the backup in {backup} is damaged: {'; '.join(bad)}; restore another backup"
        )


def restore(backup: Path, data_dir: Path, *, force: bool = False) -> RestoreReport:
    manifest = read_manifest(backup)
    verify(backup, manifest)
    if data_dir.exists() and (not data_dir.is_dir() or any(data_dir.iterdir())) and not force:
        raise ConflictError(
            f"{data_dir} is not empty: restore into a new folder, or add --force to "
            "replace what the backup holds there (stop any node using it first)"
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    files = manifest["files"]
    _clear(data_dir, {entry["path"] for entry in files})
    artifacts = ArtifactStore(data_dir / ARTIFACTS)
    for entry in files:
        name: str = entry["path"]
        source = backup / name
        if name.startswith(f"{ARTIFACTS}/") and name.endswith(".zip"):
            artifacts.put(
                name.removeprefix(f"{ARTIFACTS}/").removesuffix(".zip"), source.read_bytes()
            )
            continue
        dest = data_dir / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest)
        dest.chmod(0o600)
    report = RestoreReport(
        str(data_dir),
        manifest["version"],
        manifest["created_at"],
        files=len(files),
        size=sum(entry["size"] for entry in files),
        not_copied=list(manifest.get("not_copied", ())),
    )
    report.counts = _counts(data_dir, artifacts=sum(f["path"].startswith(ARTIFACTS) for f in files))
    return report


def _clear(data_dir: Path, names: set[str]) -> None:
    """With ``force``: remove the parts of a data directory that the backup replaces,
    with their WAL files, so nothing of the old state mixes with the restored one."""
    for name in (STORE, BUS, INDEX, *(n for n in names if "/" not in n)):
        for suffix in ("", "-wal", "-shm"):
            (data_dir / f"{name}{suffix}").unlink(missing_ok=True)
    for folder in (BLOBS, ARTIFACTS):
        if any(n.startswith(f"{folder}/") for n in names):
            shutil.rmtree(data_dir / folder, ignore_errors=True)


def _counts(data_dir: Path, *, artifacts: int) -> dict[str, int]:
    """What a person checks after a restore: the functions and what is waiting."""
    counts = {"code packages": artifacts}
    queries = {
        STORE: {
            "functions": "SELECT count(*) FROM tf_functions",
            "versions": "SELECT count(*) FROM tf_versions",
            "aliases": "SELECT count(*) FROM tf_aliases",
        },
        BUS: {
            "topics": "SELECT count(*) FROM topics WHERE name NOT LIKE '\\_%' ESCAPE '\\'",
            "events waiting": "SELECT coalesce(sum(t.last_seq - g.cursor), 0) "
            "+ (SELECT count(*) FROM pending) FROM groups g JOIN topics t ON t.id = g.topic_id",
        },
        INDEX: {
            "buckets": "SELECT count(*) FROM buckets",
            "objects": "SELECT count(*) FROM objects",
        },
    }
    for name, asks in queries.items():
        path = data_dir / name
        if not path.is_file():
            continue
        conn = sqlite3.connect(path)
        try:
            for what, query in asks.items():
                # A schema of another release: the count is only informative.
                with contextlib.suppress(sqlite3.Error):
                    counts[what] = int(conn.execute(query).fetchone()[0])
        finally:
            conn.close()
    return counts


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as read:
        while chunk := read.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()
