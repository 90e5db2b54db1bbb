"""The HTTP side of the ``provided`` relay: requests from a runtime's bootstrap, read
from one keep-alive connection at a time, and Lambda-shaped answers.

``Connection.parse`` returns whole requests from what arrived (``Content-Length`` or
chunked bodies), answers ``Expect: 100-continue``, and turns a body over
``MAX_PAYLOAD`` into the ``TOO_LARGE`` marker without keeping it (the bytes of a sized
body are skipped; a chunked one closes the connection). Standard library only, and
small: it is imported by every ``provided`` environment.
"""

from __future__ import annotations

import json
import socket

#: Lambda's limit for a synchronous response: 6 MB.
MAX_PAYLOAD = 6 * 1024 * 1024
MAX_HEADER = 64 * 1024

_REASONS = {
    100: "Continue",
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Request Entity Too Large",
    500: "Internal Server Error",
}


class Request:
    """One request from the bootstrap."""

    __slots__ = ("body", "headers", "method", "path")

    def __init__(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body


class Connection:
    """One HTTP/1.1 connection from the bootstrap (keep-alive, one request at a time)."""

    __slots__ = ("buffer", "close_after", "continued", "discard", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self.discard = 0  # body bytes of an oversized request still to skip
        self.continued = False  # "100 Continue" sent for the request being read
        self.close_after = False

    def send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        head = f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}\r\n"
        if status != 100:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            for name, value in (headers or {}).items():
                head += f"{name}: {value}\r\n"
            if self.close_after:
                head += "Connection: close\r\n"
        try:
            self.sock.sendall(head.encode("latin-1") + b"\r\n" + body)
        except OSError:
            self.close_after = True

    def parse(self) -> Request | None:
        """The next whole request in the buffer, or None. Oversized bodies are answered
        413 here and skipped."""
        buffer = self.buffer
        if self.discard:
            skipped = min(self.discard, len(buffer))
            del buffer[:skipped]
            self.discard -= skipped
            if self.discard:
                return None
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) > MAX_HEADER:
                self.close_after = True
                self.send(400, error_body("InvalidRequest", "Request headers are too large"))
            return None
        lines = bytes(buffer[:end]).decode("latin-1").split("\r\n")
        try:
            method, target, version = lines[0].split(" ", 2)
        except ValueError:
            self.close_after = True
            self.send(400, error_body("InvalidRequest", "Malformed request line"))
            return None
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if version == "HTTP/1.0" or headers.get("connection", "").lower() == "close":
            self.close_after = True
        start = end + 4
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = self._chunked(start, headers)
            if body is None:
                return None
        else:
            try:
                length = int(headers.get("content-length", "0"))
            except ValueError:
                length = -1
            if length < 0:
                self.close_after = True
                self.send(400, error_body("InvalidRequest", "Malformed Content-Length"))
                return None
            if length > MAX_PAYLOAD:
                del buffer[:start]
                if headers.get("expect", "").lower() == "100-continue" and not self.continued:
                    self.close_after = True  # the client sends no body after our answer
                else:
                    self.discard = length
                self.continued = False
                return Request(method, target, headers, TOO_LARGE)
            if len(buffer) < start + length:
                self._expect(headers)
                return None
            body = bytes(buffer[start : start + length])
            del buffer[: start + length]
        self.continued = False
        return Request(method, target.split("?", 1)[0], headers, body)

    def _expect(self, headers: dict[str, str]) -> None:
        if not self.continued and headers.get("expect", "").lower() == "100-continue":
            self.continued = True
            self.send(100, b"")

    def _chunked(self, start: int, headers: dict[str, str]) -> bytes | None:
        buffer = self.buffer
        at = start
        parts: list[bytes] = []
        total = 0
        while True:
            line_end = buffer.find(b"\r\n", at)
            if line_end < 0:
                self._expect(headers)
                return None
            try:
                size = int(bytes(buffer[at:line_end]).split(b";", 1)[0], 16)
            except ValueError:
                self.close_after = True
                self.send(400, error_body("InvalidRequest", "Malformed chunked body"))
                buffer.clear()
                return None
            at = line_end + 2
            if size == 0:
                trailer_end = buffer.find(b"\r\n", at)
                if trailer_end < 0:
                    return None
                at = trailer_end + 2
                break
            total += size
            if total > MAX_PAYLOAD:
                # Cannot skip a chunked body of unknown length: answer and close.
                self.close_after = True
                buffer.clear()
                return TOO_LARGE
            if len(buffer) < at + size + 2:
                self._expect(headers)
                return None
            parts.append(bytes(buffer[at : at + size]))
            at += size + 2
        del buffer[:at]
        return b"".join(parts)


#: Marks a request whose body was over ``MAX_PAYLOAD`` (and was not kept).
TOO_LARGE = b"\x00too-large"


def error_body(error_type: str, message: str) -> bytes:
    return json.dumps({"errorMessage": message, "errorType": error_type}).encode()
