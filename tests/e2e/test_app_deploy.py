"""An App in app.py, deployed with `triggerfish deploy app.py` to a running server."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from support.server import Server, wait_for

pytestmark = pytest.mark.e2e

APP = """
from pydantic import BaseModel

from triggerfish import App

app = App()
app.topic("orders")


class Order(BaseModel):
    id: str
    total: int


@app.on(
    "orders",
    pattern={"type": ["order.created"]},
    retry={"max_attempts": 5, "backoff": 0.05, "max_backoff": 0.1},
    dead_letter="orders-failed",
    memory=256,
)
def ship(order: Order, context):
    print(f"shipping {order.id}")
    return {"shipped": order.id, "total": order.total}


@app.function(timeout=5)
def quote(event, context):
    return {"quote": event["n"] * 2}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("sdk")
    server = Server(root / "data").start()
    project = root / "shop"
    project.mkdir()
    (project / "app.py").write_text(APP)
    server.cli("deploy", str(project / "app.py"), check=True)
    try:
        yield server
    finally:
        server.stop()


def test_the_functions_of_an_app_are_deployed_and_answer(server: Server) -> None:
    with server.client() as api:
        answer = api.post("/v1/functions/quote/invoke", json={"n": 21})
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"quote": 42}


def test_a_typed_handler_gets_its_model_and_a_bad_event_is_dead_lettered_at_once(
    server: Server,
) -> None:
    with server.client() as api:
        events = [
            {"specversion": "1.0", "id": "good-1", "source": "shop", "type": "order.created",
             "data": {"id": "A-1", "total": "3"}},
            {"specversion": "1.0", "id": "bad-1", "source": "shop", "type": "order.created",
             "data": {"id": "A-2", "total": "many"}},
        ]  # fmt: skip
        published = api.post(
            "/v1/topics/orders/events",
            content=json.dumps(events),
            headers={"Content-Type": "application/cloudevents-batch+json"},
        )
        assert published.status_code == 202, published.text

        def runs(event_id: str) -> list[dict[str, object]]:
            page = api.get("/v1/invocations", params={"function": "ship"}).json()
            return [r for r in page["invocations"] if event_id in r["event_ids"]]

        (good,) = wait_for(lambda: runs("good-1"), what="the good order's invocation")
        assert good["status"] == "ok"
        full = api.get(f"/v1/invocations/{good['id']}").json()
        assert "shipping A-1" in full["logs"]  # the string "3" became the int 3
        assert full["memory_size_mb"] == 256  # a function setting given on the decorator

        def dead_letters() -> list[dict[str, object]]:
            (dlq,) = api.get("/v1/dlq", params={"topic": "orders-failed"}).json()["dead_letters"]
            return dlq["events"]

        (letter,) = wait_for(dead_letters, what="the bad order in the dead-letter topic")
        event = letter["event"]
        assert event["id"] == "bad-1"
        assert event["errortype"] == "InvalidEventError"
        assert event["errorattempts"] == 1
        assert "total: Input should be a valid integer" in event["errormessage"]
        assert event["errorreason"].startswith("not retried")
        # Dead-lettered means acknowledged: no second attempt follows.
        (bad,) = wait_for(lambda: runs("bad-1"), what="the bad order's invocation record")
        assert bad["status"] == "error"
        assert bad["error_type"] == "InvalidEventError"
