"""`triggerfish dev`: deploy a project, redeploy it on save, show invocations live."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from support.server import wait_for
from support.services import free_port

pytestmark = pytest.mark.e2e

APP = """
from triggerfish import App

app = App()


@app.function(timeout=5)
def hello(event, context):
    print("saying {word}")
    return {{"word": "{word}"}}
"""


def test_dev_redeploys_a_saved_file_and_keeps_the_old_code_on_a_syntax_error(
    tmp_path: Path,
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    source = project / "app.py"
    source.write_text(APP.format(word="v1"))
    data_dir = tmp_path / "data"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "dev.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "triggerfish", "dev", str(project), "--port", str(port),
             "--data-dir", str(data_dir)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=project,
        )  # fmt: skip
    cleanup: list[Callable[[], None]] = []
    try:

        def output() -> str:
            return log_path.read_text()

        def healthy() -> bool:
            assert process.poll() is None, output()
            try:
                return httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, what="triggerfish dev to be up")
        assert f"Triggerfish dev is up at {url}" in output()
        token = (data_dir / "admin.token").read_text().splitlines()[0]
        api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        cleanup.append(api.close)

        def word() -> str:
            answer = api.post("/v1/functions/hello/invoke", json={})
            assert answer.status_code == 200, answer.text
            return str(answer.json()["word"])

        assert word() == "v1"
        # The live view shows the invocation and its log line.
        wait_for(lambda: "hello" in output() and "│ saying v1" in output(), what="the live view")

        source.write_text(APP.format(word="v1") + "\ndef broken(:\n")
        wait_for(lambda: "a syntax error" in output(), what="the syntax error to be shown")
        assert "the running version stays" in output()
        assert word() == "v1"

        source.write_text(APP.format(word="v2"))
        saved = time.monotonic()
        wait_for(lambda: word() == "v2", interval=0.02, what="the new code to answer")
        took = time.monotonic() - saved
        assert took < 1.0, f"the new code answered {took:.2f} s after the save"

        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 0, output()
        assert "Application shutdown complete" in output()
    finally:
        for close in cleanup:
            close()
        if process.poll() is None:
            process.kill()
            process.wait(10)
