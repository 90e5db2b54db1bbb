"""A Mosquitto of a test's own, on a free port, with the configuration the test needs
(user names and passwords, TLS): the shared one on 1883 allows anonymous clients only."""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from support.services import free_port, in_ci

HOST = "127.0.0.1"


def require_mosquitto() -> str:
    found = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if found is None:
        message = "mosquitto is not installed (Debian: apt-get install mosquitto)"
        if in_ci():
            pytest.fail(message + "; CI installs it with the services")
        pytest.skip(message)
    return found


@contextmanager
def mosquitto(folder: Path, config: str) -> Iterator[int]:
    """Run ``mosquitto`` with a listener on a free port of 127.0.0.1 and ``config``
    after it; yields the port once it accepts connections."""
    binary = require_mosquitto()
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    conf = folder / "mosquitto.conf"
    # Run as this user: as root, Mosquitto would become "mosquitto", who cannot read
    # the test's own folder (its password file, certificate and key).
    conf.write_text(
        f"listener {port} {HOST}\npersistence false\nuser {getpass.getuser()}\n{config}"
    )
    log = folder / "mosquitto.log"
    with log.open("wb") as out:
        server = subprocess.Popen([binary, "-c", str(conf)], stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 10
        while True:
            with socket.socket() as sock:
                if sock.connect_ex((HOST, port)) == 0:
                    break
            if server.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"mosquitto did not start:\n{log.read_text()}")
            time.sleep(0.02)
        yield port
    finally:
        server.terminate()
        server.wait(10)


def password_file(folder: Path, user: str, password: str) -> Path:
    """A Mosquitto password file holding one user."""
    path = folder / "passwords"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(path), user, password], check=True)
    path.chmod(0o600)
    return path


def self_signed(folder: Path, host: str = HOST) -> tuple[Path, Path]:
    """A certificate for ``host`` (an IP address), signed by itself, and its key."""
    cert, key = folder / "server.crt", folder / "server.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={host}",
         "-addext", f"subjectAltName=IP:{host}"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key
