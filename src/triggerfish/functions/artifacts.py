"""Unpacked code by digest, on this node's disk.

``ArtifactStore.put`` unpacks a package into a temporary folder beside its final place
and renames it there, so ``path(digest)`` either does not exist or holds the whole
package: a reader never sees a half-written folder, and two writers of the same digest
both succeed with one result. The zip itself is kept beside it (``<digest>.zip``) so
the code can be served again or copied to another node.

The Python modules of a package are compiled to bytecode before the rename, so the first
environment of a new version imports them without compiling and writing ``__pycache__``
(about a millisecond of its cold start for a small module). A module that does not
compile is left as it is: importing it reports the error, as an init error.
"""

from __future__ import annotations

import compileall
import os
import re
import shutil
import tempfile
from pathlib import Path

from triggerfish.errors import BuildError, NotFoundError, ValidationError
from triggerfish.functions.package import unpack

_DIGEST_RE = re.compile(r"^[0-9a-f]{64}$")


class ArtifactStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, digest: str) -> Path:
        """Where the code of ``digest`` is (or would be) unpacked."""
        return self.root / _checked(digest)

    def zip_path(self, digest: str) -> Path:
        return self.root / f"{_checked(digest)}.zip"

    def has(self, digest: str) -> bool:
        return self.path(digest).is_dir()

    def put(self, digest: str, zip_bytes: bytes) -> Path:
        """Unpack ``zip_bytes`` as ``digest``; does nothing when it is already there."""
        final = self.path(digest)
        if final.is_dir():
            return final
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{digest[:12]}-", dir=self.root))
        try:
            unpack(zip_bytes, staging / "code")
            compileall.compile_dir(staging / "code", quiet=2, workers=1)
            (staging / "code.zip").write_bytes(zip_bytes)
            os.replace(staging / "code.zip", self.zip_path(digest))
            try:
                os.rename(staging / "code", final)
            except OSError:
                # Another writer renamed the same digest first: its folder is as good.
                if not final.is_dir():
                    raise
        except OSError as exc:
            raise BuildError(f"cannot store the code of {digest[:12]}: {exc}") from exc
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return final

    def read_zip(self, digest: str) -> bytes:
        """The package of ``digest`` as it was put; NotFoundError when this node lacks it."""
        try:
            return self.zip_path(digest).read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"no code package {digest[:12]} on this node") from None


def _checked(digest: str) -> str:
    if not _DIGEST_RE.match(digest):
        raise ValidationError(f"not a sha256 hex digest: {digest!r}", field="digest")
    return digest
