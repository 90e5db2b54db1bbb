"""Run `triggerfish up` as a real process, and talk to it over HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from support.services import free_port

ROOT = Path(__file__).resolve().parents[2]


class Server:
    def __init__(
        self, data_dir: Path, *, env: dict[str, str] | None = None, python: str | None = None
    ) -> None:
        """``python``: the interpreter to run it with (default: this one)."""
        self.data_dir = data_dir
        self.python = python or sys.executable
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **(env or {})}
        self.env.pop("TRIGGERFISH_TOKEN", None)
        self.env.pop("TRIGGERFISH_URL", None)
        self.process: subprocess.Popen[str] | None = None
        self.log_path = data_dir.parent / f"server-{self.port}.log"

    def start(self, *args: str, timeout: float = 30.0) -> Server:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a") as log:
            self.process = subprocess.Popen(
                [
                    self.python,
                    "-m",
                    "triggerfish",
                    "up",
                    "--port",
                    str(self.port),
                    "--data-dir",
                    str(self.data_dir),
                    *args,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
                env=self.env,
                cwd=ROOT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"triggerfish up exited early:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).json()["status"] == "ok":
                    return self
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"triggerfish up did not become healthy:\n{self.output()}")

    def output(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    @property
    def token(self) -> str:
        path = self.data_dir / "admin.token"
        return path.read_text().strip().splitlines()[0] if path.exists() else ""

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=kwargs.pop("timeout", 30.0),
            **kwargs,
        )

    def cli_env(self) -> dict[str, str]:
        return {**self.env, "TRIGGERFISH_URL": self.url, "TRIGGERFISH_TOKEN": self.token}

    def cli(
        self, *args: str, input: str | None = None, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "triggerfish", *args],
            capture_output=True,
            text=True,
            env=self.cli_env(),
            input=input,
            cwd=ROOT,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"triggerfish {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result

    def terminate(self, timeout: float = 30.0) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill9(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def wait_for(
    predicate: Any, *, timeout: float = 30.0, interval: float = 0.1, what: str = ""
) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout}s waiting for {what or predicate}: last={last!r}"
    )
