"""``bucket`` triggers: checked at deploy time; the bucket is created if missing.

The object store publishes every change of a bucket to ``_bucket.<name>`` by itself,
so a bucket trigger needs no running source beyond making sure its bucket exists
(deploying a function with a trigger on ``photos`` creates ``photos``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from triggerfish.errors import ConfigError
from triggerfish.functions.triggers import BucketOptions
from triggerfish.sources.base import Source, SourceContext
from triggerfish.sources.buckets.names import bucket_name_problem
from triggerfish.sources.buckets.store import BucketStore

log = logging.getLogger("triggerfish.buckets")

EVENT_NAMES = (
    "ObjectCreated:*",
    "ObjectCreated:Put",
    "ObjectCreated:Copy",
    "ObjectCreated:CompleteMultipartUpload",
    "ObjectRemoved:*",
    "ObjectRemoved:Delete",
)


class EnsureBucket:
    def __init__(self, buckets: BucketStore, name: str) -> None:
        self._buckets = buckets
        self._name = name

    async def start(self) -> None:
        if await self._buckets.create_bucket(self._name):
            log.info("created bucket %s for a trigger", self._name)

    async def stop(self) -> None:
        return None


class BucketKind:
    name = "bucket"

    def __init__(self, buckets: BucketStore | None = None) -> None:
        self._buckets = buckets

    def validate(self, options: Mapping[str, Any], *, where: str) -> None:
        try:
            parsed = BucketOptions.model_validate(dict(options))
        except PydanticValidationError as exc:
            raise ConfigError(f"{where}: {exc.errors()[0]['msg']}") from None
        problem = bucket_name_problem(parsed.name)
        if problem:
            raise ConfigError(f"{where}.name: {problem}")
        for index, event in enumerate(parsed.events):
            bare = event.removeprefix("s3:")
            if bare not in EVENT_NAMES and bare != "*":
                known = ", ".join(f"s3:{name}" for name in EVENT_NAMES)
                raise ConfigError(
                    f"{where}.events[{index}]: unknown S3 event {event!r} (expected one of {known})"
                )

    def create(self, context: SourceContext) -> Source | None:
        if self._buckets is None:
            return None
        return EnsureBucket(self._buckets, str(context.options["name"]))
