"""Every CloudEvents conformance case, sent over HTTP to a running server, is accepted
(202) and stored on the topic with all its attributes, extensions and data."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from support.cloudevents_cases import (
    CASES_DIR,
    binary_request,
    load_cases,
    split,
    structured_request,
)
from support.server import Server
from triggerfish.events.model import is_json_content_type

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    server = Server(tmp_path_factory.mktemp("ce") / "data").start()
    with server.client() as client:
        yield client
    server.stop()


@pytest.mark.parametrize(("document", "mode"), load_cases())
def test_conformance_case_is_stored_whole(
    api: httpx.Client, document: dict[str, Any] | None, mode: str, request: pytest.FixtureRequest
) -> None:
    if document is None:
        reason = f"CloudEvents conformance data not found at {CASES_DIR}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    topic = "ce-" + str(abs(hash(request.node.nodeid)))
    assert api.put(f"/v1/topics/{topic}", json={}).status_code == 200
    headers, body = (binary_request if mode == "binary" else structured_request)(document)
    response = api.post(f"/v1/topics/{topic}/events", content=body, headers=headers)
    assert response.status_code == 202, response.text
    (stored,) = api.get(f"/v1/topics/{topic}/events").json()["events"]
    event = stored["event"]

    attributes, extensions = split(document)
    for name, value in {**attributes, **extensions}.items():
        assert event[name] == value, name
    data = document.get("Data")
    if data is None:
        assert "data" not in event
        assert "data_base64" not in event
    elif is_json_content_type(attributes.get("datacontenttype")):
        assert event["data"] == json.loads(data)
    elif "data" in event:
        assert event["data"] == data
    else:
        assert base64.b64decode(event["data_base64"]) == data.encode()
