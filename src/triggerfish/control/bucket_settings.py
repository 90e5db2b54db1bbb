"""Settings of the built-in buckets that S3 keeps with a bucket (its CORS rules ...):
one document of the store per bucket and setting, kind ``bucket-<setting>``.

They live in the control-plane store, so every node of a cluster reads the same ones;
each read goes to the store, so a change made through one node holds on the next
request to any node. Deleting a bucket forgets its settings (``forget``), as S3 does.
The S3 API owns the shape of each body and checks it before it is put.
"""

from __future__ import annotations

from typing import Any

from triggerfish.store.sql import SqlStore

#: The settings a bucket may have, each the suffix of its documents' kind.
SETTINGS = ("cors",)


def _kind(setting: str) -> str:
    if setting not in SETTINGS:
        raise ValueError(f"unknown bucket setting {setting!r}")
    return f"bucket-{setting}"


class BucketSettings:
    def __init__(self, store: SqlStore) -> None:
        self._store = store

    async def get(self, bucket: str, setting: str) -> dict[str, Any] | None:
        """The setting's body; None when the bucket has none."""
        return await self._store.documents.find(_kind(setting), bucket)

    async def put(self, bucket: str, setting: str, body: dict[str, Any]) -> None:
        """Create or replace the setting."""
        await self._store.documents.put(_kind(setting), bucket, body)

    async def delete(self, bucket: str, setting: str) -> bool:
        """Remove it; False when there was none."""
        return await self._store.documents.delete(_kind(setting), bucket)

    async def forget(self, bucket: str) -> None:
        """Remove every setting of a bucket that is gone."""
        for setting in SETTINGS:
            await self._store.documents.delete(_kind(setting), bucket)
