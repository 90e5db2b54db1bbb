"""`triggerfish export --format sam` says what a template cannot carry, never drops it."""

from __future__ import annotations

from triggerfish.cli.export import sam_template

DESCRIBED = {
    "name": "orders",
    "aliases": {"live": "v1"},
    "versions": [{"version": "v1", "config": {"handler": "main.handler", "runtime": "python"}}],
    "trigger_configs": [
        {"name": "api", "http": {"route": "POST /orders", "payload": "v2", "cors": True}},
    ],
}


def test_a_routes_cors_is_listed_as_not_exported() -> None:
    template = sam_template(DESCRIBED)
    [event] = template["Resources"]["OrdersFunction"]["Properties"]["Events"].values()
    assert event["Type"] == "HttpApi"
    unsaid = template["Metadata"]["Triggerfish"]["NotExported"]
    assert any("cors" in line and "CorsConfiguration" in line for line in unsaid)
