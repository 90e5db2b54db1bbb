"""Secrets: named values that functions' environments and webhooks refer to, kept
encrypted in the store.

A secret is a document of kind ``secret`` named by the secret's name. Its value is
sealed with AES-256-GCM by the ``SecretBox`` of the access keys (the same key file,
``access-keys.key`` in the data directory, mode 0600), with ``secret:<name>`` as the
associated data, so a sealed value copied onto another name does not open. A copy of
the store alone reveals names and times, never a value; nodes sharing a store must
share the key file, and a node whose key file does not open the secrets already
stored refuses to start.

What this module promises: a value leaves it only through ``value`` and ``values``,
which the one component that needs it calls (the spec that starts a function's
environment, a webhook checking a signature); nothing here logs, and no message it
raises repeats a value.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from triggerfish.errors import ConfigError, PayloadTooLargeError, ValidationError
from triggerfish.security.access_keys import SecretBox

if TYPE_CHECKING:
    from triggerfish.store.sql import SqlStore

KIND = "secret"
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")
NAME_RULE = (
    "a secret name of 1 to 128 characters: lowercase letters, digits, '-', '_' or '.', "
    "starting with a letter or a digit"
)
MAX_VALUE_BYTES = 32 * 1024  # environment variables, not files: Lambda allows 4 KB in all


@dataclass(frozen=True, slots=True)
class SecretInfo:
    """What is listed about a secret; its value is never part of it."""

    name: str
    created_at: float
    updated_at: float


def check_name(name: str) -> str:
    """``name`` when it follows the rule; ValidationError saying the rule otherwise."""
    if not NAME_RE.match(name):
        shown = name if len(name) <= 140 else name[:137] + "..."
        raise ValidationError(f"expected {NAME_RULE}, got {shown!r}", field="name")
    return name


def check_value(value: str) -> str:
    """A value must be non-empty text that an environment variable can hold. The
    messages say what is wrong, never what the value is."""
    size = len(value.encode("utf-8", "surrogatepass"))
    if size == 0:
        raise ValidationError("a secret's value must not be empty", field="value")
    if size > MAX_VALUE_BYTES:
        raise PayloadTooLargeError(
            f"a secret's value is at most {MAX_VALUE_BYTES:,} bytes; this one is {size:,}"
        )
    if "\x00" in value:
        raise ValidationError(
            "a secret's value must not contain NUL characters (environment variables "
            "cannot hold them); encode binary values, for example in base64",
            field="value",
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError("a secret's value must be valid UTF-8 text", field="value") from None
    return value


def _associated(name: str) -> str:
    return f"secret:{name}"


class SecretStore:
    """The secrets of an installation, sealed in the store's documents."""

    def __init__(self, store: SqlStore, key_file: Path) -> None:
        self._store = store
        self._box = SecretBox(key_file)

    @property
    def key_file(self) -> Path:
        return self._box.path

    async def start(self) -> None:
        """Load (or create) the key file and check that it opens a secret already in
        the store: a node of a cluster started with a key file of its own stops here."""
        await asyncio.to_thread(self._box.load)
        for name, body in (await self._store.documents.list(KIND)).items():
            if isinstance(body.get("value"), str):
                self._open(name, body["value"])
                break

    async def put(self, name: str, value: str) -> tuple[SecretInfo, bool]:
        """Create or replace a secret; returns what is listed about it and whether it is
        new."""
        check_name(name)
        check_value(value)
        now = time.time()
        existing = await self._store.documents.find(KIND, name)
        created_at = now if existing is None else float(existing.get("created_at", now))
        body = {
            "value": self._box.seal(value, _associated(name)),
            "created_at": created_at,
            "updated_at": now,
        }
        await self._store.documents.put(KIND, name, body)
        return SecretInfo(name, created_at, now), existing is None

    async def value(self, name: str) -> str | None:
        """The value of a secret; None when there is none."""
        body = await self._store.documents.find(KIND, name)
        if body is None or not isinstance(body.get("value"), str):
            return None
        return self._open(name, body["value"])

    async def values(self, names: Iterable[str]) -> dict[str, str]:
        """The values of those of ``names`` that exist, by name."""
        out: dict[str, str] = {}
        for name in dict.fromkeys(names):
            value = await self.value(name)
            if value is not None:
                out[name] = value
        return out

    async def exists(self, name: str) -> bool:
        return await self._store.documents.find(KIND, name) is not None

    async def list(self) -> list[SecretInfo]:
        """Every secret, by name, without values."""
        found = await self._store.documents.list(KIND)
        return [
            SecretInfo(
                name,
                float(body.get("created_at", 0.0)),
                float(body.get("updated_at", body.get("created_at", 0.0))),
            )
            for name, body in found.items()
        ]

    async def info(self, name: str) -> SecretInfo | None:
        body = await self._store.documents.find(KIND, name)
        if body is None:
            return None
        created = float(body.get("created_at", 0.0))
        return SecretInfo(name, created, float(body.get("updated_at", created)))

    async def delete(self, name: str) -> bool:
        """Remove a secret; False when there was none."""
        return await self._store.documents.delete(KIND, name)

    def seal(self, value: str, purpose: str) -> str:
        """``value`` sealed for ``purpose`` (ASCII; the associated data), for a component
        that keeps an encrypted value of its own (a webhook's literal secret)."""
        return self._box.seal(value, purpose)

    def open_sealed(self, sealed: str, purpose: str) -> str:
        """What ``seal`` sealed for ``purpose``; ConfigError when it does not open."""
        try:
            return self._box.open(sealed, purpose)
        except (ConfigError, ValueError):
            raise ConfigError(
                f"an encrypted value of {purpose} does not open with {self._box.path}; "
                "every node sharing a store must have the same key file"
            ) from None

    def _open(self, name: str, sealed: str) -> str:
        try:
            return self._box.open(sealed, _associated(name))
        except (ConfigError, ValueError):
            raise ConfigError(
                f"{self._box.path} does not open the secret {name!r} in the store: every "
                "node sharing a store must have the same key file; copy it from the "
                "first node's data directory"
            ) from None
