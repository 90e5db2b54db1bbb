"""Durable broker sources lose nothing when Triggerfish is killed (SIGKILL) between the
broker's delivery and the function's success, and receive after a restart what was
published while Triggerfish was down."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from integration.brokers.cases import DURABLE, HOST, BrokerCase, eventually, unique_name
from support.projects import write_project
from support.services import require_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHILD = Path(__file__).with_name("node_child.py")
TESTS = Path(__file__).resolve().parents[2]

SLOW_RECORDER = """
import json, os, time

def handler(event, context):
    time.sleep(0.05)
    with open(os.environ["OUT"], "a") as out:
        out.write(str(event["data"]["n"]) + "\\n")
"""


@pytest.fixture
async def durable_cases() -> AsyncIterator[list[BrokerCase]]:
    """One case of every durable kind whose server is running, all in one node: a
    restart after a kill waits for the killed node's leases to end once, not per kind."""
    made = []
    for kind in DURABLE:
        require_port(HOST, kind.port, kind.what)
        made.append(kind(unique_name()))
    for case in made:
        await case.setup()
    yield made
    for case in made:
        await case.teardown()


class Child:
    def __init__(self, tmp_path: Path, manifest: Path) -> None:
        self.data = tmp_path / "data"
        self.manifest = manifest
        self.ready = tmp_path / "ready"
        self.log = tmp_path / "node.log"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.ready.unlink(missing_ok=True)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), *sys.path])}
        with self.log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, str(CHILD), str(self.data), str(self.manifest), str(self.ready),
                stdout=log, stderr=asyncio.subprocess.STDOUT, env=env,
            )  # fmt: skip

        def up() -> bool:
            assert self.process is not None
            if self.process.returncode is not None:
                raise AssertionError(f"the node exited:\n{self.log.read_text()}")
            return self.ready.exists()

        await eventually(up, within=60, what="the node to be ready")

    async def kill9(self) -> None:
        assert self.process is not None
        self.process.kill()
        await self.process.wait()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            await self.kill9()


def naming(path: Path) -> list[int]:
    """The processes whose command line names ``path`` (a node's source process does)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if str(path.resolve()).encode() in argv:
                found.append(int(entry.name))
    return found


def done(out: Path) -> set[int]:
    return {int(n) for n in out.read_text().split()} if out.exists() else set()


async def test_kill_9_between_delivery_and_success_loses_nothing(
    tmp_path: Path, durable_cases: list[BrokerCase]
) -> None:
    outs = {case.kind: tmp_path / f"done-{case.kind}.txt" for case in durable_cases}
    functions = {
        f"record-{case.kind}": (
            SLOW_RECORDER,
            {
                "environment": {"OUT": str(outs[case.kind])},
                "max_concurrency": 2,
                "triggers": [
                    {"source": case.source(), "retry": {"max_attempts": 50, "backoff": 0.05}}
                ],
            },
        )
        for case in durable_cases
    }
    manifest = write_project(tmp_path / "project", functions)
    child = Child(tmp_path, manifest)
    try:
        await child.start()
        for case in durable_cases:
            await case.publish([f'{{"n": {n}}}'.encode() for n in range(60)])
        await eventually(
            lambda: all(len(done(out)) >= 5 for out in outs.values()), what="handling to start"
        )
        assert naming(child.data), "the sources run in a process of their own"
        await child.kill9()
        unfinished = [kind for kind, out in outs.items() if len(done(out)) < 60]
        assert unfinished, "the kill came too late to prove anything"
        # The killed node's source process sees its socket close and exits.
        await eventually(lambda: not naming(child.data), within=10, what="no orphan")
        # Published while Triggerfish is down: the broker keeps them for it.
        for case in durable_cases:
            await case.publish([f'{{"n": {n}}}'.encode() for n in range(60, 80)])

        await child.start()
        await eventually(
            lambda: all(done(out) >= set(range(80)) for out in outs.values()),
            within=120,
            what="every message handled",
        )
    finally:
        await child.stop()
    lost = {kind: sorted(set(range(80)) - done(out)) for kind, out in outs.items()}
    assert lost == {kind: [] for kind in outs}
