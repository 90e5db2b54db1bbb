"""Webhook signatures: plain, GitHub's and the timestamped format, and their events."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from triggerfish.functions.webhooks import WebhookConfig
from triggerfish.sources.webhooks import SignatureError, verify, webhook_event

BODY = b'{"action": "opened"}'
SECRET = "topsecret"
NOW = 1_700_000_000
STAMPED = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()


def digest(payload: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


def config(**values: object) -> WebhookConfig:
    return WebhookConfig.model_validate({"topic": "hooks", "secret": SECRET, **values})


@pytest.mark.parametrize(
    ("fmt", "headers"),
    [
        ("plain", {"X-Signature-256": digest(BODY)}),
        ("plain", {"x-signature-256": "sha256=" + digest(BODY)}),
        ("github", {"X-Hub-Signature-256": "sha256=" + digest(BODY)}),
        ("timestamped", {"X-Webhook-Signature": f"t={NOW},v1={digest(f'{NOW}.'.encode() + BODY)}"}),
        (
            "timestamped",  # two signatures while a secret is rotated: one is enough
            {"X-Webhook-Signature": f"t={NOW},v1={'0' * 64},v1={STAMPED}"},
        ),
    ],
)
def test_good_signatures_pass(fmt: str, headers: dict[str, str]) -> None:
    assert verify(config(format=fmt), headers, BODY, now=NOW) is not None


@pytest.mark.parametrize(
    ("fmt", "headers", "message"),
    [
        ("plain", {}, "missing signature header X-Signature-256"),
        ("plain", {"X-Signature-256": digest(b"other body")}, "does not match"),
        ("plain", {"X-Signature-256": digest(BODY, "wrong secret")}, "does not match"),
        ("github", {"X-Hub-Signature-256": digest(BODY)}, "must be 'sha256=<hex digest>'"),
        ("github", {"X-Hub-Signature-256": "sha256=" + "ab" * 32}, "does not match"),
        ("timestamped", {"X-Webhook-Signature": digest(BODY)}, "must be 't=<unix seconds>"),
        (
            "timestamped",
            {"X-Webhook-Signature": f"t={NOW - 301},v1={digest(f'{NOW - 301}.'.encode() + BODY)}"},
            "at most 300 s",
        ),
        (
            "timestamped",  # signed without the timestamp: replayable, refused
            {"X-Webhook-Signature": f"t={NOW},v1={digest(BODY)}"},
            "no signature",
        ),
    ],
)
def test_bad_signatures_are_refused(fmt: str, headers: dict[str, str], message: str) -> None:
    with pytest.raises(SignatureError, match=message):
        verify(config(format=fmt), headers, BODY, now=NOW)


def test_a_custom_header_and_an_environment_secret() -> None:
    hook = config(secret="env:HOOK_SECRET", header="X-Custom-Sig")
    headers = {"x-custom-sig": digest(BODY, "from-env")}
    assert verify(hook, headers, BODY, environ={"HOOK_SECRET": "from-env"}) == digest(
        BODY, "from-env"
    )
    with pytest.raises(SignatureError):
        verify(hook, headers, BODY, environ={"HOOK_SECRET": "another"})


def test_an_open_webhook_accepts_anything() -> None:
    open_hook = WebhookConfig.model_validate({"topic": "hooks"})
    assert verify(open_hook, {}, BODY) is None


def test_github_events_keep_the_delivery_id_and_event_name() -> None:
    headers = {"X-GitHub-Event": "pull_request", "X-GitHub-Delivery": "d-123",
               "Content-Type": "application/json"}  # fmt: skip
    event = webhook_event("gh", config(format="github"), headers, BODY, signature="x")
    assert (event.id, event.type, event.source) == ("d-123", "com.github.pull_request",
                                                    "triggerfish://webhooks/gh")  # fmt: skip
    assert event.to_dict()["data"] == {"action": "opened"}


def test_a_replayed_timestamped_request_gets_the_same_event_id() -> None:
    hook = config(format="timestamped", type="payment.event")
    one = webhook_event("pay", hook, {"content-type": "text/plain"}, b"hi", signature="abc")
    two = webhook_event("pay", hook, {"content-type": "text/plain"}, b"hi", signature="abc")
    assert one.id == two.id
    assert one.type == "payment.event"
    assert one.to_dict()["data"] == "hi"
