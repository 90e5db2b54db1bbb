"""``triggerfish webhooks`` and ``triggerfish brokers`` against a running server: what
``set`` stores is what the server then does, and bad settings are refused before any
request with the manifest's messages."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from support.cli import run
from support.server import Server

pytestmark = pytest.mark.e2e

SECRET = "hook-secret-for-tests"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("hooks") / "data", env={"HOOK_SECRET": SECRET})
    server.start()
    yield server
    server.stop()


def signed(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_a_webhook_set_from_options_checks_signatures(server: Server) -> None:
    done = run(
        server, "webhooks", "set", "gh", "--topic", "gh-events",
        "--secret", "env:HOOK_SECRET", "--format", "github", "--type", "com.example.push",
    )  # fmt: skip
    assert done.code == 0, done.err
    assert "signed with env:HOOK_SECRET" in done.out

    listed = {w["name"]: w for w in run(server, "webhooks", "ls", "--json").json()}
    assert listed["gh"]["topic"] == "gh-events"
    assert listed["gh"]["format"] == "github"
    shown = run(server, "webhooks", "show", "gh", "--json").json()
    assert shown["url"] == f"{server.url}/v1/webhooks/gh"

    body = b'{"ref": "main"}'
    header = "X-Hub-Signature-256"
    good = httpx.post(shown["url"], content=body, headers={header: signed(body, SECRET)})
    assert good.status_code == 202, good.text
    bad = httpx.post(shown["url"], content=body, headers={header: signed(body, "guess")})
    assert bad.status_code == 401


def test_a_webhook_set_from_a_manifest_file_hides_its_secret(
    server: Server, tmp_path: Path
) -> None:
    manifest = {
        "functions": {},
        "webhooks": {"pay": {"topic": "payments", "secret": "s3cr3t", "format": "timestamped"}},
    }
    file = tmp_path / "triggerfish.yaml"
    file.write_text(yaml.safe_dump(manifest))
    done = run(server, "webhooks", "set", "pay", "--file", str(file), "--tolerance", "2m")
    assert done.code == 0, done.err
    shown = run(server, "webhooks", "show", "pay", "--json").json()
    assert (shown["format"], shown["tolerance"], shown["secret"]) == (
        "timestamped",
        120,
        "********",
    )
    text = run(server, "webhooks", "show", "pay")
    assert "s3cr3t" not in text.out


def test_bad_webhook_settings_are_refused_with_the_key_path(server: Server, tmp_path: Path) -> None:
    bad_format = run(server, "webhooks", "set", "x", "--topic", "t", "--format", "gitlab")
    assert bad_format.code == 2
    assert "webhooks.x.format" in bad_format.err
    no_topic = run(server, "webhooks", "set", "x", "--secret", "env:HOOK_SECRET")
    assert no_topic.code == 2
    assert "webhooks.x.topic: missing" in no_topic.err
    absent = tmp_path / "hook.json"
    absent.write_text('{"webhooks": {"other": {"topic": "t"}}}')
    wrong_entry = run(server, "webhooks", "set", "x", "--file", str(absent))
    assert wrong_entry.code == 2
    assert "no webhooks.x" in wrong_entry.err
    assert "x" not in {w["name"] for w in run(server, "webhooks", "ls", "--json").json()}


def test_webhooks_rm(server: Server) -> None:
    assert run(server, "webhooks", "set", "gone", "--topic", "gone-events").code == 0
    assert run(server, "webhooks", "rm", "gone").code == 0
    assert run(server, "webhooks", "show", "gone").code == 3
    assert run(server, "webhooks", "rm", "gone").code == 3
    # its topic stays, with its events
    assert "gone-events" in [t["name"] for t in run(server, "topics", "ls", "--json").json()]


def test_a_broker_set_from_options_and_a_file(server: Server, tmp_path: Path) -> None:
    done = run(
        server, "brokers", "set", "cache", "--kind", "redis",
        "--url", "redis://:hunter2@127.0.0.1:6379/0", "-o", "maxlen=1000", "-o", "field=body",
    )  # fmt: skip
    assert done.code == 0, done.err
    assert "hunter2" not in done.out
    shown = run(server, "brokers", "show", "cache", "--json").json()
    assert (shown["kind"], shown["maxlen"], shown["field"]) == ("redis", 1000, "body")
    assert "hunter2" not in shown["url"]

    file = tmp_path / "broker.json"
    file.write_text('{"kind": "nats", "url": "nats://127.0.0.1:4222", "format": "cloudevent"}')
    assert run(server, "brokers", "set", "bus", "--file", str(file)).code == 0
    listed = {b["name"]: b for b in run(server, "brokers", "ls", "--json").json()}
    assert (listed["bus"]["kind"], listed["bus"]["format"]) == ("nats", "cloudevent")
    assert {"cache", "bus"} <= set(listed)
    table = run(server, "brokers", "ls")
    assert table.code == 0, table.err
    assert "cache" in table.out


def test_bad_broker_settings_are_refused(server: Server) -> None:
    wrong_scheme = run(server, "brokers", "set", "b", "--kind", "redis", "--url", "nats://h")
    assert wrong_scheme.code == 2
    assert "redis://" in wrong_scheme.err
    bad_option = run(
        server, "brokers", "set", "b", "--kind", "redis", "--url", "redis://h", "-o", "maxlen"
    )
    assert bad_option.code == 2
    assert "KEY=VALUE" in bad_option.err
    unknown = run(
        server, "brokers", "set", "b", "--kind", "redis", "--url", "redis://h", "-o", "speed=9"
    )
    assert unknown.code == 2
    assert "brokers.b.speed: unknown key" in unknown.err


def test_brokers_rm(server: Server) -> None:
    assert run(server, "brokers", "set", "old", "--kind", "redis", "--url", "redis://h").code == 0
    assert run(server, "brokers", "rm", "old").code == 0
    assert run(server, "brokers", "show", "old").code == 3
    assert run(server, "brokers", "rm", "old").code == 3
