"""Bucket triggers: options checked at deploy time, and the bucket made on start."""

from __future__ import annotations

from pathlib import Path

import pytest

from triggerfish.bus.memory import MemoryBus
from triggerfish.errors import ConfigError
from triggerfish.sources.base import SourceContext
from triggerfish.sources.buckets import BucketKind, BucketStore


def test_valid_options_pass() -> None:
    BucketKind().validate(
        {"name": "photos", "events": ["s3:ObjectCreated:*", "ObjectRemoved:Delete"]},
        where="functions.f.triggers[0].bucket",
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"name": "Bad_Name"}, r"triggers\[0\]\.bucket\.name: invalid bucket name 'Bad_Name'"),
        ({"name": "192.168.1.1"}, "looks like an IP address"),
        ({"name": "photos", "events": ["s3:ObjectMade"]}, r"events\[0\]: unknown S3 event"),
    ],
)
def test_invalid_options_name_the_key(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        BucketKind().validate(options, where="functions.f.triggers[0].bucket")


async def test_a_trigger_creates_its_bucket(tmp_path: Path) -> None:
    bus = MemoryBus()
    await bus.start()
    store = BucketStore(tmp_path / "b", bus)
    await store.start()
    try:
        context = SourceContext(
            trigger_id="f.bucket-photos",
            function="f",
            topic="_bucket.photos",
            options={"name": "photos"},
            config={"bucket": {"name": "photos"}},
            bus=bus,
            store=None,  # type: ignore[arg-type]
            data_dir=tmp_path / "src",
        )
        source = BucketKind(store).create(context)
        assert source is not None
        await source.start()
        await source.stop()
        assert [name for name, _ in await store.list_buckets()] == ["photos"]
        assert (await bus.topic("_bucket.photos")).name == "_bucket.photos"
    finally:
        await store.stop()
        await bus.stop()
