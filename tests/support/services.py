"""Reaching real servers: skip with the reason on a developer's machine, fail in CI."""

from __future__ import annotations

import os
import socket

import pytest

#: The role the tests connect to the local PostgreSQL as (trust authentication).
POSTGRES_USER = os.environ.get("TRIGGERFISH_TEST_PGUSER", "postgres")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def require_port(host: str, port: int, what: str) -> None:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return
    except OSError as exc:
        message = f"{what} is not reachable at {host}:{port} ({exc.strerror or exc})"
        if in_ci():
            pytest.fail(message + "; CI must start it (.ci/run)")
        pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
