"""Blob files: the bytes of objects and parts, written so that nobody sees half of one.

A new blob is written to ``tmp/`` while its MD5 is computed, then flushed to disk
(fsync), renamed into ``blobs/<2 hex>/<32 hex>`` under a fresh name, and its folder
fsynced: a blob file either is whole or does not exist. Blobs are never rewritten;
replacing an object points its key at a new blob and removes the old one afterwards,
so a reader that opened the old one keeps reading it whole. Blobs that no index row
names (a crash between the rename and the index commit) are removed at start.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from pathlib import Path
from typing import BinaryIO


class BlobWriter:
    """Receives the bytes of one new blob; ``md5`` and ``size`` describe them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: BinaryIO | None = path.open("wb", buffering=1024 * 1024)
        self._md5 = hashlib.md5(usedforsecurity=False)
        self.size = 0

    def write(self, data: bytes) -> None:
        assert self._file is not None, "the blob is already closed"
        self._file.write(data)
        self._md5.update(data)
        self.size += len(data)

    @property
    def md5(self) -> bytes:
        return self._md5.digest()

    def close(self) -> None:
        """Flush to disk (blocking: call it from a worker thread)."""
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self.path.unlink(missing_ok=True)


class Blobs:
    def __init__(self, root: Path) -> None:
        self._blobs = root / "blobs"
        self._tmp = root / "tmp"

    def prepare(self, keep: set[str]) -> int:
        """Create the folders, empty ``tmp/`` and remove blobs not in ``keep``;
        returns how many were removed."""
        shutil.rmtree(self._tmp, ignore_errors=True)
        self._tmp.mkdir(parents=True, exist_ok=True)
        self._blobs.mkdir(parents=True, exist_ok=True)
        removed = 0
        for folder in self._blobs.iterdir():
            for path in folder.iterdir():
                if f"{folder.name}/{path.name}" not in keep:
                    path.unlink(missing_ok=True)
                    removed += 1
        return removed

    def writer(self) -> BlobWriter:
        return BlobWriter(self._tmp / f"{uuid.uuid4().hex}.part")

    def seal(self, writer: BlobWriter) -> str:
        """Make the written bytes a blob (blocking); returns its name."""
        writer.close()
        name = uuid.uuid4().hex
        folder = self._blobs / name[:2]
        folder.mkdir(exist_ok=True)
        os.replace(writer.path, folder / name)
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return f"{name[:2]}/{name}"

    def path(self, blob: str) -> Path:
        return self._blobs / blob

    def open(self, blob: str) -> BinaryIO:
        return self.path(blob).open("rb")

    def remove(self, blobs: list[str]) -> None:
        for blob in blobs:
            self.path(blob).unlink(missing_ok=True)
