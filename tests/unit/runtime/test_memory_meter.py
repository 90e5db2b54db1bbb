"""An environment's peak memory is its own, also in a process started by exec from a
bigger one (which inherits that program's peak in ``getrusage``)."""

from __future__ import annotations

import subprocess
import sys

CHILD = """
import resource
from triggerfish.runtime.python.capture import MemoryMeter
meter = MemoryMeter()
inherited = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
first = meter.peak_mb()
meter.reset()
block = bytearray(40 * 1024 * 1024)
grown = meter.peak_mb()
del block
meter.reset()
print(inherited, first, grown, meter.peak_mb())
"""

PARENT = """
import os, sys
block = bytearray(300 * 1024 * 1024)  # resident: this program's peak is over 300 MB
os.execv(sys.executable, [sys.executable, "-c", sys.argv[1]])
"""


def run(program: str, *args: str) -> list[int]:
    out = subprocess.run(
        [sys.executable, "-c", program, *args], capture_output=True, text=True, check=True
    )
    return [int(word) for word in out.stdout.split()]


def test_the_peak_after_a_reset_is_the_invocations_own_in_a_plain_process() -> None:
    _, first, grown, after = run(CHILD)
    assert first < 100
    assert grown >= first + 40
    assert after < grown - 30


def test_a_peak_inherited_through_exec_is_not_reported() -> None:
    inherited, first, grown, after = run(PARENT, CHILD)
    assert inherited >= 300  # what getrusage alone would have reported
    assert first < 100
    assert grown >= first + 40
    assert after < grown - 30
