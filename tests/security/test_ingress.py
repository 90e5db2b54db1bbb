"""Ingress limits against a running `triggerfish up`, as an anonymous client on the
network meets them: bodies refused while they stream in and before authentication,
heads capped, ce-* headers counted in an event's size, deeply nested JSON refused in
every ingest mode, and an event that cannot be shaped for its trigger dead-lettered.

Each abuse checks what a user would notice: the status and message, the server's
memory (``/proc/<pid>/status``) not growing with what was sent, and the events
accepted before it all still there."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from support.projects import write_project
from support.server import Server, wait_for

pytestmark = pytest.mark.e2e

MB = 1024 * 1024
BIG = 300 * MB  # what the attacker sends
GROWTH = 64 * MB  # the most the server's memory may grow meanwhile
SECRET = "webhook-secret-for-tests"
NOOP = "def handler(event, context):\n    return None\n"
CE = {"ce-specversion": "1.0", "ce-source": "/attacker", "ce-type": "abuse"}


def project(root: Path, *, triggers: list[dict[str, Any]]) -> Path:
    manifest = write_project(root, {"noop": (NOOP, {"triggers": triggers})}, topics={"kept": {}})
    document = yaml.safe_load(manifest.read_text())
    document["webhooks"] = {
        "signed": {"topic": "hooks", "secret": SECRET},
        "open": {"topic": "hooks"},
    }
    manifest.write_text(yaml.safe_dump(document))
    return manifest


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("ingress")
    triggers = [
        {"name": "private", "http": {"route": "POST /private", "auth": "token"}},
        {"name": "public", "http": {"route": "POST /public"}},
    ]
    server = Server(root / "data").start(
        "--deploy", str(project(root / "project", triggers=triggers))
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api(server: Server) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


@pytest.fixture(scope="module")
def kept(api: httpx.Client) -> list[str]:
    """Events accepted before any abuse; ``test_nothing_accepted_is_lost`` checks them last."""
    ids = [f"kept-{n}" for n in range(3)]
    for event_id in ids:
        published = api.post(
            "/v1/topics/kept/events",
            json={"specversion": "1.0", "id": event_id, "source": "/t", "type": "t", "data": {}},
            headers={"content-type": "application/cloudevents+json"},
        )
        assert published.status_code == 202, published.text
    return ids


def memory(server: Server) -> tuple[int, int]:
    """The server's resident memory now, and its peak, in bytes."""
    assert server.process is not None
    fields = dict(
        line.split(":", 1)
        for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines()
    )
    return int(fields["VmRSS"].split()[0]) * 1024, int(fields["VmHWM"].split()[0]) * 1024


def stream(total: int, chunk: int = MB) -> Iterator[bytes]:
    """``total`` bytes in ``chunk``-byte pieces, never more than one in memory."""
    block = b"x" * chunk
    for _ in range(total // chunk):
        yield block


class Answer:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


def exchange(server: Server, head: bytes, body: Iterable[bytes] = ()) -> Answer:
    """Send ``head`` and ``body`` over a raw connection, as far as the server takes
    them, and read its answer: a server that answers early and closes is what these
    tests look for, and no HTTP client lets a test send a malformed head."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        try:
            sock.sendall(head)
            for chunk in body:
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed without taking the rest
        received = b""
        try:
            while b"\r\n\r\n" not in received:
                data = sock.recv(65536)
                if not data:
                    break
                received += data
            head_text, _, rest = received.partition(b"\r\n\r\n")
            lines = head_text.decode("latin-1").split("\r\n")
            headers = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(":") for line in lines[1:])
            }
            length = int(headers.get("content-length", "0"))
            while len(rest) < length:
                data = sock.recv(65536)
                if not data:
                    break
                rest += data
        except ConnectionResetError:
            pytest.fail(f"the connection was reset before the answer was read: {received!r}")
    return Answer(int(lines[0].split()[1]), headers, rest)


def request_head(
    method: str, path: str, headers: dict[str, str] | None = None, *, length: int | None = None
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


# -- bodies ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "headers", "status", "says"),
    [
        pytest.param("/v1/webhooks/signed", {}, 413, "for a webhook", id="signed webhook"),
        pytest.param("/v1/webhooks/open", {}, 413, "for a webhook", id="open webhook"),
        pytest.param("/fn/private", {}, 401, "Unauthorized", id="route with token auth"),
        pytest.param("/fn/public", {}, 413, "Request Entity Too Large", id="open route"),
        pytest.param("/v1/topics/kept/events", CE | {"ce-id": "x"}, 401, "missing", id="ingest"),
        pytest.param("/v1/functions/noop/invoke", {}, 401, "missing", id="invoke"),
        pytest.param(
            "/v1/topics/kept/events",
            {"authorization": "AWS4-HMAC-SHA256 Credential=AK/20260101/x/s3/aws4_request"},
            413,
            "over the limit of 1048576 bytes",
            id="ingest with a signature over its body",
        ),
        pytest.param(
            "/2015-03-31/functions/noop/invocations",
            {},
            413,
            "Request must be smaller than 6291456 bytes",
            id="lambda invoke",
        ),
    ],
)
def test_an_anonymous_300_mb_body_is_refused_without_being_held(
    server: Server, kept: list[str], path: str, headers: dict[str, str], status: int, says: str
) -> None:
    httpx.post(f"{server.url}{path}", content=b"{}", headers=headers)  # warm the route up
    rss, peak = memory(server)
    started = time.monotonic()
    response = httpx.post(f"{server.url}{path}", content=stream(BIG), headers=headers, timeout=60)
    assert response.status_code == status, response.text
    assert says in response.text
    after, after_peak = memory(server)
    assert after - rss < GROWTH, f"resident memory grew by {(after - rss) // MB} MB"
    assert after_peak - peak < GROWTH, f"peak memory grew by {(after_peak - peak) // MB} MB"
    # Refused as it came in: the server did not read on through the 300 MB.
    assert time.monotonic() - started < 20


@pytest.mark.parametrize("over", [1, BIG], ids=["just over", "300 MB"])
@pytest.mark.parametrize(
    ("path", "headers", "limit"),
    [
        ("/v1/topics/kept/events", CE | {"ce-id": "x"}, 1 * MB),
        ("/v1/functions/noop/invoke", {}, 6 * MB),
        ("/v1/webhooks/signed", {}, 1 * MB),
        ("/v1/topics", {}, 1 * MB),
    ],
)
def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_sent(
    server: Server, kept: list[str], path: str, headers: dict[str, str], limit: int, over: int
) -> None:
    # No credentials and no body at all: the answer comes from Content-Length alone.
    answer = exchange(server, request_head("POST", path, headers, length=limit + over))
    assert answer.status == 413
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["type"].endswith("/payload-too-large")
    assert f"limit of {limit} bytes" in problem["detail"]
    # The server will not read 300 MB to keep the connection: it closes it.
    assert (answer.headers.get("connection") == "close") == (over == BIG)


def test_the_s3_api_refuses_an_upload_over_5_gib_before_its_signature(
    server: Server, kept: list[str]
) -> None:
    signature = "AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/s3/aws4_request, " + (
        "SignedHeaders=host, Signature=00"
    )
    answer = exchange(
        server,
        request_head("PUT", "/bucket/key", {"authorization": signature}, length=5 * 1024**3 + 1),
    )
    assert answer.status == 400
    assert b"<Code>EntityTooLarge</Code>" in answer.body


# -- heads -------------------------------------------------------------------------------


def test_a_100_mb_header_is_refused_as_it_arrives(server: Server, kept: list[str]) -> None:
    rss, peak = memory(server)
    head = b"POST /v1/topics/kept/events HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: "
    answer = exchange(server, head, stream(100 * MB, 64 * 1024))
    assert answer.status == 431
    assert "header_size_limit" in answer.json()["detail"]
    after, after_peak = memory(server)
    assert after - rss < GROWTH
    assert after_peak - peak < GROWTH


@pytest.mark.parametrize(
    ("headers", "says"),
    [
        pytest.param({"x-big": "a" * 70_000}, "header_size_limit", id="one large header"),
        pytest.param({f"x-h{n}": "1" for n in range(150)}, "header_count_limit", id="many"),
    ],
)
@pytest.mark.parametrize(
    "path", ["/v1/topics/kept/events", "/fn/public", "/healthz", "/bucket/key"]
)
def test_a_head_over_its_limits_gets_431(
    server: Server,
    api: httpx.Client,
    kept: list[str],
    path: str,
    headers: dict[str, str],
    says: str,
) -> None:
    # With a token, event ingest is answered on the fast path: it has the same limits.
    response = api.post(path, content=b"{}", headers=headers)
    assert response.status_code == 431
    assert response.headers["content-type"] == "application/problem+json"
    assert says in response.json()["detail"]


# -- event size and nesting --------------------------------------------------------------


def test_ce_headers_count_toward_the_event_size(api: httpx.Client, kept: list[str]) -> None:
    headers = CE | {"ce-id": "big-ext", "ce-note": "n" * 60_000}
    response = api.post("/v1/topics/kept/events", content=b"x" * 1_000_000, headers=headers)
    assert response.status_code == 413
    assert "ce-* headers count toward the event's size" in response.json()["detail"]
    # A 10 MB extension never gets that far: the head is over its limit.
    headers["ce-note"] = "n" * (10 * MB)
    response = api.post("/v1/topics/kept/events", content=b"{}", headers=headers)
    assert response.status_code == 431


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def structured(event_id: str, data: bytes) -> bytes:
    return b'{"specversion":"1.0","id":"%s","source":"/t","type":"t","data":%s}' % (
        event_id.encode(),
        data,
    )


@pytest.mark.parametrize("depth", [65, 1000, 100_000])
@pytest.mark.parametrize("mode", ["structured", "batch", "binary"])
def test_json_nested_deeper_than_64_is_refused_in_every_ingest_mode(
    api: httpx.Client, kept: list[str], mode: str, depth: int
) -> None:
    if mode == "structured":
        body, headers = (
            structured("deep", nested(depth)),
            {"content-type": "application/cloudevents+json"},
        )
    elif mode == "batch":
        body = b"[" + structured("deep", nested(depth)) + b"]"
        headers = {"content-type": "application/cloudevents-batch+json"}
    else:
        body, headers = nested(depth), CE | {"ce-id": "deep", "content-type": "application/json"}
    response = api.post("/v1/topics/kept/events", content=body, headers=headers)
    assert response.status_code == 400, response.text
    assert "nested more than 64 levels deep" in response.json()["detail"]


def test_json_nested_64_deep_is_accepted(api: httpx.Client) -> None:
    assert api.put("/v1/topics/nested", json={}).status_code == 200
    headers = CE | {"ce-id": "deep-64", "content-type": "application/json"}
    response = api.post("/v1/topics/nested/events", content=nested(64), headers=headers)
    assert response.status_code == 202, response.text
    body = structured("deep-64s", nested(64))
    headers = {"content-type": "application/cloudevents+json"}
    response = api.post("/v1/topics/nested/events", content=body, headers=headers)
    assert response.status_code == 202, response.text


def test_deep_json_is_refused_on_invokes_and_webhooks(
    server: Server, api: httpx.Client, kept: list[str]
) -> None:
    response = api.post("/v1/functions/noop/invoke", content=nested(65))
    assert response.status_code == 400
    assert "payload is nested more than 64 levels" in response.json()["detail"]
    response = api.post("/v1/functions/noop/invoke?mode=async", content=nested(1000))
    assert response.status_code == 400
    response = httpx.post(
        f"{server.url}/v1/webhooks/open",
        content=nested(1000),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert "webhook's JSON body is nested" in response.json()["detail"]


def test_nothing_accepted_is_lost(server: Server, api: httpx.Client, kept: list[str]) -> None:
    # Runs after the abuse above (pytest keeps the file's order).
    assert httpx.get(f"{server.url}/healthz").json()["status"] == "ok"
    stored = api.get("/v1/topics/kept/events").json()["events"]
    assert [item["event"]["id"] for item in stored] == kept
    # The open webhook's one warm-up request is its only event: nothing refused got in.
    hooks = api.get("/v1/topics/hooks/events").json()["events"]
    assert [item["event"]["data_base64"] for item in hooks] == ["e30="]


# -- an event that cannot be shaped ------------------------------------------------------


def test_a_binary_event_that_cannot_be_shaped_is_dead_lettered_after_its_attempts(
    tmp_path: Path,
) -> None:
    # A node that lets deeply nested data in (a raised json_depth_limit, or events from
    # before the limit existed): data 300 levels deep cannot be written as its
    # CloudEvent's JSON, so each delivery fails before the function runs.
    retry = {"max_attempts": 2, "backoff": 0.05, "max_backoff": 0.1}
    triggers = [{"topic": "deep", "retry": retry, "dead_letter": "deep-failed"}]
    manifest = project(tmp_path / "project", triggers=triggers)
    server = Server(tmp_path / "data", env={"TRIGGERFISH_JSON_DEPTH_LIMIT": "300"})
    server.start("--deploy", str(manifest))
    try:
        with server.client() as api:
            assert api.put("/v1/topics/deep", json={}).status_code == 200
            headers = CE | {"ce-id": "too-deep", "content-type": "application/json"}
            response = api.post("/v1/topics/deep/events", content=nested(300), headers=headers)
            assert response.status_code == 202, response.text

            def dead_letters() -> list[dict[str, Any]]:
                (dlq,) = api.get("/v1/dlq", params={"topic": "deep-failed"}).json()["dead_letters"]
                return list(dlq["events"])

            (letter,) = wait_for(dead_letters, what="the event in the dead-letter topic")
            event = letter["event"]
            assert event["id"] == "too-deep"
            assert event["errortype"] == "PayloadError"
            assert event["errorattempts"] == 2
            assert "cannot build its cloudevent payload" in event["errormessage"]

            def settled() -> bool:
                (group,) = api.get("/v1/topics/deep").json()["triggers"]
                return bool(group["in_flight"] == 0 and group["backlog"] == 0)

            wait_for(settled, what="the trigger to hold nothing in flight")
    finally:
        server.stop()
