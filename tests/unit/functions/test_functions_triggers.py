"""Trigger sources in the manifest: shorthands, internal topics, bucket filters."""

from __future__ import annotations

from triggerfish.functions.triggers import TriggerConfig
from triggerfish.patterns import compile as compile_pattern


def test_schedule_shorthand_and_its_internal_topic() -> None:
    trigger = TriggerConfig.model_validate({"schedule": "rate(5 minutes)"})
    assert trigger.schedule is not None
    assert trigger.schedule.expression == "rate(5 minutes)"
    assert trigger.schedule.missed == "skip"
    assert trigger.kind == "schedule"
    assert trigger.group_id("report") == "report.schedule"
    assert trigger.bus_topic("report") == "_schedule.report.schedule"


def test_triggers_on_one_bucket_share_its_topic() -> None:
    a = TriggerConfig.model_validate({"bucket": "photos"})
    b = TriggerConfig.model_validate(
        {"bucket": {"name": "photos", "prefix": "raw/"}, "name": "raw"}
    )
    assert a.bus_topic("f") == b.bus_topic("g") == "_bucket.photos"
    assert a.group_id("f") == "f.bucket-photos"


def test_bucket_filters_select_event_names_prefix_and_suffix() -> None:
    trigger = TriggerConfig.model_validate(
        {
            "bucket": {
                "name": "photos",
                "events": ["s3:ObjectCreated:*", "ObjectRemoved:Delete"],
                "prefix": "raw/",
                "suffix": ".jpg",
            }
        }
    )
    assert trigger.bucket is not None
    patterns = [compile_pattern(f) for f in trigger.bucket.filters()]

    def matches(event_type: str, key: str) -> bool:
        event = {"type": f"com.amazonaws.s3.{event_type}", "subject": key}
        return all(p.matches(event) for p in patterns)

    assert matches("ObjectCreated:Put", "raw/cat.jpg")
    assert matches("ObjectCreated:CompleteMultipartUpload", "raw/a/b.jpg")
    assert matches("ObjectRemoved:Delete", "raw/cat.jpg")
    assert not matches("ObjectRemoved:DeleteMarkerCreated", "raw/cat.jpg")
    assert not matches("ObjectCreated:Put", "cooked/cat.jpg")
    assert not matches("ObjectCreated:Put", "raw/cat.png")


def test_http_routes_and_brokers_are_sources_too() -> None:
    http = TriggerConfig.model_validate({"http": {"route": "POST /orders/{id}"}})
    assert (http.kind, http.http and http.http.auth) == ("http", "none")
    broker = TriggerConfig.model_validate(
        {"source": {"kind": "mqtt", "url": "mqtt://127.0.0.1:1883", "topics": ["sensors/#"]}}
    )
    assert broker.kind == "mqtt"
    assert broker.bus_topic("alert") == "_source.alert.mqtt"
