"""Reaching real servers: skip with the reason on a developer's machine, fail in CI."""

from __future__ import annotations

import itertools
import os
import random
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


#: Ports below the kernel's ephemeral range (32768-60999 on Linux): the local end of an
#: outgoing connection never takes one of them between ``free_port`` and the bind.
_PORTS = range(10_000, 32_000)
#: Each pytest-xdist worker its own slice of ``_PORTS``, so two workers never both find
#: a port free before either binds it.
_SLICES = 16


def _worker_ports() -> range:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    index = int(worker) % _SLICES if worker.isdigit() else 0
    size = len(_PORTS) // _SLICES
    start = _PORTS.start + index * size
    return range(start, start + size)


_mine = _worker_ports()
# Start at a random place in the slice: two test runs side by side rarely meet.
_turn = itertools.count(random.randrange(len(_mine)))


def free_port() -> int:
    """A port of 127.0.0.1 that nothing listens on, for a server the test starts: this
    process's ports in turn, each checked by binding it."""
    for _ in range(len(_mine)):
        port = _mine[next(_turn) % len(_mine)]
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free port in {_mine}")
