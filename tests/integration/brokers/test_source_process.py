"""The broker kinds that run apart (AMQP here) run in the node's source process: it is
started with the first such trigger, started again when it dies (losing nothing), gone
with the last one, and the settings can keep those sources in the node instead."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from integration.brokers.cases import (
    HOST,
    AmqpCase,
    connected,
    deploy_recorder,
    eventually,
    handled,
    unique_name,
)
from support.services import require_port
from triggerfish.config import Settings
from triggerfish.node import Node

pytestmark = pytest.mark.integration


@pytest.fixture
async def queue() -> AsyncIterator[AmqpCase]:
    require_port(HOST, AmqpCase.port, AmqpCase.what)
    case = AmqpCase(unique_name())
    await case.setup()
    yield case
    await case.teardown()


async def add(queue: AmqpCase, numbers: range) -> None:
    await queue.publish([json.dumps({"n": n}).encode() for n in numbers])


def numbers(out: Path) -> set[int]:
    return {event["data"]["n"] for event in handled(out)}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in _state(pid)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "X"


async def test_a_killed_source_process_is_started_again_and_loses_nothing(
    node: Node, tmp_path: Path, queue: AmqpCase
) -> None:
    assert node.source_process is not None
    assert node.source_process.pid is None
    out = await deploy_recorder(node, tmp_path, queue.source())
    first = node.source_process.pid
    assert first is not None
    assert first != os.getpid()

    await add(queue, range(100))
    await eventually(lambda: len(numbers(out)) >= 10, what="handling to start")
    os.kill(first, signal.SIGKILL)
    await add(queue, range(100, 200))

    async def replaced() -> bool:
        process = node.source_process
        return process is not None and process.pid not in (None, first) and await connected(node)

    await eventually(replaced, what="a new source process")
    await eventually(lambda: numbers(out) >= set(range(200)), what="every entry handled")
    assert node.source_process.starts == 2


async def test_the_source_process_ends_with_the_last_broker_trigger(
    node: Node, tmp_path: Path, queue: AmqpCase
) -> None:
    assert node.source_process is not None
    await deploy_recorder(node, tmp_path, queue.source())
    pid = node.source_process.pid
    assert pid is not None
    assert alive(pid)

    await node.control.functions.delete("record")
    await eventually(lambda: not alive(pid), what="the source process to exit")
    assert node.source_process.pid is None


async def test_sources_can_run_in_the_node_process(tmp_path: Path, queue: AmqpCase) -> None:
    node = Node(Settings(data_dir=tmp_path / "data", shutdown_grace=2.0, source_process=False))
    await node.start()
    try:
        assert node.source_process is None
        out = await deploy_recorder(node, tmp_path, queue.source())
        await add(queue, range(20))
        await eventually(lambda: numbers(out) == set(range(20)), what="every entry handled")
    finally:
        await node.stop()
