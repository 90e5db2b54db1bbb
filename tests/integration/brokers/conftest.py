"""Fixtures of the broker-source contract suite (the cases are in ``cases.py``): one
parameter per source kind, each skipped on a developer's machine when its server is
not running (and failing under CI)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from integration.brokers.cases import CASES, HOST, BrokerCase, unique_name
from support.services import require_port
from triggerfish.config import Settings
from triggerfish.node import Node


@pytest.fixture(params=CASES, ids=[c.kind for c in CASES])
async def case(request: pytest.FixtureRequest) -> AsyncIterator[BrokerCase]:
    kind: type[BrokerCase] = request.param
    require_port(HOST, kind.port, kind.what)
    made = kind(unique_name())
    await made.setup()
    yield made
    await made.teardown()


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    settings = Settings(data_dir=tmp_path / "data", shutdown_grace=2.0)
    made = Node(settings)
    await made.start()
    yield made
    await made.stop()
