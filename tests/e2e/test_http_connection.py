"""HTTP/1.1 as clients speak it to ``triggerfish up``, on raw sockets: the invoke and
ingest paths are answered in the connection itself (``api.protocol``), so keep-alive,
pipelining, ``Connection: close``, ``Expect: 100-continue``, a body sent in pieces and a
client that leaves must all behave as on every other path."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest

from support.projects import write_project
from support.server import Server, wait_for

pytestmark = pytest.mark.e2e

ECHO = """
def handler(event, context):
    print("event:", event)
    return {"got": event}
"""


CLOUDEVENT = {"ce-specversion": "1.0", "ce-id": "p1", "ce-source": "tests", "ce-type": "piped"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("http-connection")
    manifest = write_project(root / "project", {"echo": (ECHO, {"max_concurrency": 2})})
    server = Server(root / "data").start("--deploy", str(manifest))
    with server.client() as api:
        api.put("/v1/topics/piped", json={}).raise_for_status()
    yield server
    server.stop()


def request(
    server: Server,
    path: str,
    body: bytes = b"",
    *,
    method: str = "POST",
    headers: dict[str, str] | None = None,
    token: bool = True,
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"host: 127.0.0.1:{server.port}"]
    if token:
        lines.append(f"authorization: Bearer {server.token}")
    if method == "POST":
        lines += ["content-type: application/json", f"content-length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Connection:
    """One client connection that reads whole responses (by ``content-length``)."""

    def __init__(self, server: Server) -> None:
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def response(self) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buffer:
            self._read()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers: dict[str, str] = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            assert name.lower() not in headers, f"header {name} sent twice: {head!r}"
            headers[name.lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            self._read()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return int(status_line.split()[1]), headers, body

    def closed_by_server(self) -> bool:
        try:
            return self.sock.recv(1) == b""
        except (ConnectionResetError, TimeoutError):
            return False

    def _read(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed with {self.buffer!r} unread")
        self.buffer += chunk

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def conn(server: Server) -> Iterator[Connection]:
    connection = Connection(server)
    yield connection
    connection.close()


def test_invokes_on_one_kept_alive_connection_each_get_one_whole_response(
    server: Server, conn: Connection
) -> None:
    for n in range(5):
        conn.send(request(server, "/v1/functions/echo/invoke", json.dumps({"n": n}).encode()))
        status, headers, body = conn.response()
        assert status == 200
        assert json.loads(body) == {"got": {"n": n}}
        assert headers["content-type"] == "application/json"
        assert headers["x-triggerfish-status"] == "ok"
        assert "date" in headers  # the server's default headers, as on every path
    assert conn.buffer == b""  # nothing more was sent than the five responses


def test_pipelined_requests_are_answered_in_order_across_paths(
    server: Server, conn: Connection
) -> None:
    conn.send(
        request(server, "/v1/functions/echo/invoke", b'{"first": 1}')
        + request(server, "/healthz", method="GET")
        + request(server, "/v1/topics/piped/events", b'{"n": 1}', headers=CLOUDEVENT)
        + request(server, "/v1/functions/echo/invoke", b'{"last": 1}')
    )
    first, health, published, last = (conn.response() for _ in range(4))
    assert (first[0], json.loads(first[2])) == (200, {"got": {"first": 1}})
    assert (health[0], json.loads(health[2])["status"]) == (200, "ok")
    assert (published[0], json.loads(published[2])["stored"]) == (202, 1)
    assert (last[0], json.loads(last[2])) == (200, {"got": {"last": 1}})


def test_connection_close_is_honoured_after_the_response(server: Server, conn: Connection) -> None:
    conn.send(request(server, "/v1/functions/echo/invoke", b"{}", headers={"connection": "close"}))
    status, headers, _ = conn.response()
    assert status == 200
    assert headers["connection"] == "close"
    assert conn.closed_by_server()


def test_http_1_0_gets_its_answer_and_the_connection_closes(server: Server) -> None:
    conn = Connection(server)
    try:
        conn.send(
            request(server, "/v1/functions/echo/invoke", b'{"old": true}').replace(
                b"HTTP/1.1", b"HTTP/1.0", 1
            )
        )
        status, _, body = conn.response()
        assert (status, json.loads(body)) == (200, {"got": {"old": True}})
        assert conn.closed_by_server()
    finally:
        conn.close()


def test_expect_100_continue_then_a_body_sent_in_pieces(server: Server, conn: Connection) -> None:
    body = json.dumps({"pieces": list(range(50))}).encode()
    head, _, _ = request(
        server, "/v1/functions/echo/invoke", body, headers={"expect": "100-continue"}
    ).partition(b"\r\n\r\n")
    conn.send(head + b"\r\n\r\n")
    status, _, _ = conn.response()
    assert status == 100
    conn.send(body[:10])
    time.sleep(0.1)
    conn.send(body[10:])
    status, _, answer = conn.response()
    assert (status, json.loads(answer)) == (200, {"got": {"pieces": list(range(50))}})


def test_a_client_that_leaves_mid_body_is_not_invoked_and_harms_no_one(
    server: Server,
) -> None:
    leaving = Connection(server)
    leaving.send(request(server, "/v1/functions/echo/invoke", b'{"never": "finished"}')[:-5])
    leaving.close()
    conn = Connection(server)
    try:
        conn.send(request(server, "/v1/functions/echo/invoke", b'{"after": "leaving"}'))
        status, _, body = conn.response()
        assert (status, json.loads(body)) == (200, {"got": {"after": "leaving"}})
    finally:
        conn.close()

    def logs() -> list[str]:
        with server.client() as api:
            found = api.get(
                "/v1/invocations", params={"function": "echo", "limit": 1000, "logs": True}
            )
        return [record["logs"] for record in found.json()["invocations"]]

    wait_for(lambda: any("leaving" in text for text in logs()), what="the record of the call")
    assert not any("never" in text for text in logs())


def test_a_request_the_fast_path_declines_gets_the_routes_answer(
    server: Server, conn: Connection
) -> None:
    conn.send(request(server, "/v1/functions/echo/invoke", b"{}", token=False))
    status, headers, body = conn.response()
    assert status == 401
    assert headers["content-type"] == "application/problem+json"
    assert "token" in json.loads(body)["detail"].lower()
    # The connection stays usable after the route answered.
    conn.send(request(server, "/v1/functions/echo/invoke", b'{"then": 1}'))
    status, _, body = conn.response()
    assert (status, json.loads(body)) == (200, {"got": {"then": 1}})


def test_a_body_over_the_limit_is_refused_with_the_limit(server: Server, conn: Connection) -> None:
    huge = b'{"x": "' + b"a" * (7 * 1024 * 1024) + b'"}'
    conn.send(request(server, "/v1/functions/echo/invoke", huge))
    status, headers, body = conn.response()
    assert status == 413
    assert headers["content-type"] == "application/problem+json"
    assert "limit" in json.loads(body)["detail"].lower()
