"""Webhooks against a running server: signed requests become events on their topic,
and a request with a wrong signature is refused and publishes nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from support.projects import write_project
from support.server import Server

pytestmark = pytest.mark.e2e

GITHUB_SECRET = "github-secret-for-tests"
PAY_SECRET = "pay-secret-for-tests"
NOOP = "def handler(event, context):\n    return None\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("webhooks")
    manifest = write_project(root / "project", {"noop": (NOOP, {})})
    document = yaml.safe_load(manifest.read_text())
    document["webhooks"] = {
        "github": {"topic": "gh-events", "secret": "env:GITHUB_SECRET", "format": "github"},
        "pay": {"topic": "payments", "secret": PAY_SECRET, "format": "timestamped",
                "header": "Pay-Signature", "tolerance": "5m", "type": "payment.notified"},
        "open": {"topic": "open-events"},
    }  # fmt: skip
    manifest.write_text(yaml.safe_dump(document))
    server = Server(root / "data", env={"GITHUB_SECRET": GITHUB_SECRET})
    server.start("--deploy", str(manifest))
    yield server
    server.stop()


def events(server: Server, topic: str) -> list[dict[str, Any]]:
    with server.client() as api:
        response = api.get(f"/v1/topics/{topic}/events")
        assert response.status_code == 200, response.text
        return [item["event"] for item in response.json()["events"]]


def github_signature(body: bytes, secret: str = GITHUB_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_a_github_delivery_becomes_an_event(server: Server) -> None:
    body = json.dumps({"action": "opened", "number": 7}).encode()
    response = httpx.post(
        f"{server.url}/v1/webhooks/github",
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": "pull_request",
            "X-GitHub-Delivery": "delivery-1",
            "X-Hub-Signature-256": github_signature(body),
        },
    )
    assert response.status_code == 202, response.text
    (event,) = [e for e in events(server, "gh-events") if e["id"] == "delivery-1"]
    assert event["type"] == "com.github.pull_request"
    assert event["source"] == "triggerfish://webhooks/github"
    assert event["data"] == {"action": "opened", "number": 7}


def test_a_wrong_signature_is_refused_and_publishes_nothing(server: Server) -> None:
    before = events(server, "gh-events")
    body = b'{"action": "closed"}'
    for signature in (github_signature(body, "not the secret"), github_signature(b"other"), None):
        headers = {"Content-Type": "application/json", "X-GitHub-Delivery": "delivery-bad"}
        if signature is not None:
            headers["X-Hub-Signature-256"] = signature
        response = httpx.post(f"{server.url}/v1/webhooks/github", content=body, headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
    assert events(server, "gh-events") == before


def test_timestamped_signatures_and_their_replay_window(server: Server) -> None:
    body = b"amount=10&currency=eur"

    def send(stamp: int, secret: str = PAY_SECRET) -> httpx.Response:
        digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
        return httpx.post(
            f"{server.url}/v1/webhooks/pay",
            content=body,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Pay-Signature": f"t={stamp},v1={digest.hexdigest()}",
            },
        )

    now = int(time.time())
    first = send(now)
    assert first.status_code == 202, first.text
    replay = send(now)  # the same request again: accepted, stored once
    assert replay.status_code == 202
    assert replay.json()["duplicate"] is True
    assert send(now - 3600).status_code == 401  # outside the five-minute window
    assert send(now, "wrong").status_code == 401
    stored = events(server, "payments")
    assert len(stored) == 1
    assert stored[0]["type"] == "payment.notified"
    assert base64.b64decode(stored[0]["data_base64"]) == body


def test_an_open_webhook_needs_no_signature_nor_token(server: Server) -> None:
    response = httpx.post(f"{server.url}/v1/webhooks/open", content=b"ping")
    assert response.status_code == 202
    assert events(server, "open-events")[-1]["data_base64"] == "cGluZw=="


def test_unknown_webhooks_are_404(server: Server) -> None:
    assert httpx.post(f"{server.url}/v1/webhooks/nope", content=b"{}").status_code == 404


def test_deploy_puts_webhooks_and_the_api_hides_literal_secrets(
    server: Server, tmp_path: Path
) -> None:
    manifest = write_project(tmp_path / "more", {"noop": (NOOP, {})})
    document = yaml.safe_load(manifest.read_text())
    document["webhooks"] = {"later": {"topic": "later-events", "secret": "s3cret"}}
    manifest.write_text(yaml.safe_dump(document))
    server.cli("deploy", str(manifest), check=True)

    with server.client() as api:
        listed = {w["name"]: w for w in api.get("/v1/webhooks").json()["webhooks"]}
        assert listed["later"]["topic"] == "later-events"
        assert listed["later"]["secret"] == "********"
        assert listed["github"]["secret"] == "env:GITHUB_SECRET"
    body = b"{}"
    signature = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    response = httpx.post(
        f"{server.url}/v1/webhooks/later", content=body, headers={"X-Signature-256": signature}
    )
    assert response.status_code == 202
    assert len(events(server, "later-events")) == 1


def test_managing_webhooks_needs_a_token(server: Server) -> None:
    response = httpx.put(f"{server.url}/v1/webhooks/sneaky", json={"topic": "t"})
    assert response.status_code == 401
