"""Blobs: the bytes of objects and parts, written so that nobody sees half of one.

``Blobs`` is what ``BucketStore`` asks of a place for bytes: a ``BlobWriter`` to receive
them (a file in the node's ``tmp/`` folder, which computes their MD5), ``seal`` to make
them a blob, ``open`` to read one back as a ``BlobReader`` (an open blob reads whole
even if its object is replaced meanwhile), ``remove`` for the blobs no row names any
more. ``FileBlobs`` (here) keeps them as files of the node's data directory;
``PostgresBlobs`` in the database of a cluster (``postgres_blobs``).

``FileBlobs``: a new blob is written to ``tmp/`` while its MD5 is computed, then flushed to disk
(fsync), renamed into ``blobs/<2 hex>/<32 hex>`` under a fresh name, and its folder
fsynced: a blob file either is whole or does not exist. Blobs are never rewritten;
replacing an object points its key at a new blob and removes the old one afterwards,
so a reader that opened the old one keeps reading it whole. Blobs that no index row
names (a crash between the rename and the index commit) are removed at start.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import BinaryIO, Protocol

#: How much a reader reads at a time.
READ_CHUNK = 1024 * 1024


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

    def close(self, *, durable: bool = True) -> None:
        """Flush (blocking: call it from a worker thread); to the disk when ``durable``."""
        if self._file is not None:
            self._file.flush()
            if durable:
                os.fsync(self._file.fileno())
            self._file.close()
            self._file = None

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self.path.unlink(missing_ok=True)


class BlobReader(Protocol):
    def stream(self, first: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        """The bytes from ``first``, ``length`` of them (all the rest when None), in
        pieces of at most ``READ_CHUNK``."""
        ...

    async def aclose(self) -> None: ...


class Blobs(Protocol):
    def writer(self) -> BlobWriter: ...

    async def prepare(self, keep: Callable[[], Awaitable[set[str]]]) -> int:
        """Get ready at start: drop what an interrupted write left; ``keep`` tells the
        blobs the index names. Returns how many blobs were removed."""
        ...

    async def seal(self, writer: BlobWriter) -> str:
        """Make the written bytes a blob; returns its name."""
        ...

    async def open(self, blob: str) -> BlobReader:
        """FileNotFoundError when the blob is gone (its object was replaced)."""
        ...

    async def remove(self, blobs: Sequence[str]) -> None:
        """The blobs no index row names any more (or sealed ones never indexed)."""
        ...


class FileReader:
    """A blob file, open: removing the file does not stop it."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle

    async def stream(self, first: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        await asyncio.to_thread(self._handle.seek, first)
        left = length
        while left is None or left > 0:
            wanted = READ_CHUNK if left is None else min(READ_CHUNK, left)
            data = await asyncio.to_thread(self._handle.read, wanted)
            if not data:
                break
            if left is not None:
                left -= len(data)
            yield data

    async def aclose(self) -> None:
        self._handle.close()


class FileBlobs:
    def __init__(self, root: Path) -> None:
        self._blobs = root / "blobs"
        self._tmp = root / "tmp"

    async def prepare(self, keep: Callable[[], Awaitable[set[str]]]) -> int:
        """Create the folders, empty ``tmp/`` and remove blobs the index does not name."""
        return await asyncio.to_thread(self._prepare, await keep())

    def _prepare(self, keep: set[str]) -> int:
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

    async def seal(self, writer: BlobWriter) -> str:
        return await asyncio.to_thread(self._seal, writer)

    def _seal(self, writer: BlobWriter) -> str:
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

    async def open(self, blob: str) -> BlobReader:
        return FileReader(await asyncio.to_thread(self.path(blob).open, "rb"))

    async def remove(self, blobs: Sequence[str]) -> None:
        if blobs:
            await asyncio.to_thread(self._remove, blobs)

    def _remove(self, blobs: Sequence[str]) -> None:
        for blob in blobs:
            self.path(blob).unlink(missing_ok=True)
