"""``/readyz`` and the refusal of new events on a low disk, in-process: the threshold is
moved above the free space (the real full disk is ``test_full_disk.py``). Every 503
carries ``Retry-After``, no error answer names a path of the server, and a flood of
refused requests logs a few lines."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from triggerfish.api.app import create_asgi
from triggerfish.api.health import Readiness
from triggerfish.config import Settings
from triggerfish.node import Node
from triggerfish.observe.disk import Threshold
from triggerfish.observe.logs import Repeats

#: A data directory whose path is easy to spot in an answer.
DATA = "srv-triggerfish-secret-layout"
EVENT = {"specversion": "1.0", "id": "1", "source": "tests", "type": "t", "data": {"n": 1}}
CE_JSON = {"content-type": "application/cloudevents+json"}


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    made = Node(Settings(data_dir=tmp_path / DATA, shutdown_grace=1.0, sandbox=False))
    made.disk.interval = 0.0  # read the disk at every check: the test moves the threshold
    await made.start()
    yield made
    await made.stop()


@pytest.fixture
async def api(node: Node) -> AsyncIterator[httpx.AsyncClient]:
    asgi = create_asgi(node, manage_node=False)
    app = asgi.app
    app.state.readiness = Readiness(node, ttl=0.0)  # type: ignore[attr-defined]
    headers = {"authorization": f"Bearer {node.admin_token}"}
    transport = httpx.ASGITransport(app=asgi)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://127.0.0.1", headers=headers
    ) as client:
        yield client


def low(node: Node) -> None:
    node.disk.threshold = Threshold(share=1.0)  # more than is ever free


def enough(node: Node) -> None:
    node.disk.threshold = Threshold(size=0)


def check_answer(response: httpx.Response, tmp_path: Path) -> None:
    """No server path in the answer, and Retry-After on a 503."""
    text = response.text + json.dumps(dict(response.headers))
    assert DATA not in text, text
    assert str(tmp_path) not in text, text
    if response.status_code == 503:
        assert int(response.headers["retry-after"]) >= 1, response.headers


async def test_readyz_is_503_below_the_threshold_and_200_after(
    node: Node, api: httpx.AsyncClient, tmp_path: Path
) -> None:
    assert (await api.put("/v1/topics/orders", json={})).status_code == 200
    ready = await api.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ready"

    low(node)
    refused = await api.get("/readyz")
    assert refused.status_code == 503
    assert "low disk space" in refused.json()["reasons"][0]
    check_answer(refused, tmp_path)
    assert (await api.get("/healthz")).status_code == 200  # alive all the same
    publish = await api.post("/v1/topics/orders/events", json=EVENT, headers=CE_JSON)
    assert publish.status_code == 503
    assert "low on disk space" in publish.json()["detail"]
    assert "retry later" in publish.json()["detail"]
    check_answer(publish, tmp_path)
    # Reads go on.
    assert (await api.get("/v1/topics/orders")).status_code == 200

    enough(node)
    assert (await api.get("/readyz")).status_code == 200
    accepted = await api.post("/v1/topics/orders/events", json=EVENT, headers=CE_JSON)
    assert accepted.status_code in (200, 201, 202), accepted.text


async def test_every_way_in_is_refused_with_retry_after_and_no_path(
    node: Node, api: httpx.AsyncClient, tmp_path: Path
) -> None:
    await api.put("/v1/topics/orders", json={})
    low(node)
    answers = [
        await api.post("/v1/topics/orders/events", json=EVENT, headers=CE_JSON),
        await api.post("/v1/functions/any/invoke?mode=async", json={}),
        await api.post(
            "/2015-03-31/functions/any/invocations",
            json={},
            headers={"x-amz-invocation-type": "Event"},
        ),
    ]
    for answer in answers:
        assert answer.status_code == 503, (answer.request.url, answer.text)
        assert "low on disk space" in answer.text
        check_answer(answer, tmp_path)


async def test_a_bus_that_is_away_is_answered_without_its_path(
    node: Node, api: httpx.AsyncClient, tmp_path: Path
) -> None:
    await api.put("/v1/topics/orders", json={})
    await node.bus.stop()
    answers = [
        await api.post("/v1/topics/orders/events", json=EVENT, headers=CE_JSON),
        await api.get("/v1/topics/orders"),
        await api.get("/readyz"),
        await api.post("/v1/topics/missing/events", json=EVENT, headers=CE_JSON),
        await api.post("/v1/topics/orders/events", content=b"{", headers=CE_JSON),
    ]
    assert answers[0].status_code == 503
    assert "bus" in answers[0].json()["detail"]  # it still says what is away
    assert answers[2].status_code == 503
    assert any("bus is unavailable" in r for r in answers[2].json()["reasons"])
    for answer in answers:
        check_answer(answer, tmp_path)


async def test_a_flood_of_refused_requests_logs_a_few_lines(
    node: Node, api: httpx.AsyncClient
) -> None:
    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    handler.addFilter(Repeats())
    root = logging.getLogger("triggerfish")
    root.addHandler(handler)
    try:
        low(node)
        for _ in range(60):
            refused = await api.post(
                "/2015-03-31/functions/any/invocations",
                json={},
                headers={"x-amz-invocation-type": "Event"},
            )
            assert refused.status_code == 503
    finally:
        root.removeHandler(handler)
    assert 1 <= len(lines) <= 3, lines
