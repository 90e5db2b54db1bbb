"""Fixtures shared by the unit tests that need a whole node in this process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from triggerfish.config import Settings
from triggerfish.node import Node


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    """A started node on the embedded defaults (SQLite store and bus) in ``tmp_path``."""
    made = Node(Settings(data_dir=tmp_path / "data", shutdown_grace=1.0))
    await made.start()
    yield made
    await made.stop()
