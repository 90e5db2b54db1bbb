"""Waiting for something to happen in a test, instead of sleeping for a fixed time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def until(condition: Callable[[], bool], *, within: float = 5.0, what: str = "") -> None:
    """Return as soon as ``condition()`` holds; fail the test if it does not within
    ``within`` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"not within {within} s: {what or condition}"
        await asyncio.sleep(0.005)
