"""The node's memory budget: the sum of the memory sizes of its environments.

Every execution environment holds its function's memory size from the moment it is
started until it is stopped, whether it is busy or idle; an environment that would
take the sum past the capacity is not started (the executor's launcher then evicts
idle environments or waits, see ``launch``). The capacity defaults to the machine's memory, or the
memory limit of the cgroup Triggerfish runs in when that is lower.
"""

from __future__ import annotations

import os

MB = 1024 * 1024


def machine_memory_mb() -> int:
    """Physical memory, or the cgroup (v2 or v1) limit when lower, in MB."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // MB
    except (OSError, ValueError):
        total = 1024
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as limit:
                text = limit.read().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text) // MB)
        break
    return max(total, 1)


class MemoryBudget:
    def __init__(self, capacity_mb: int = 0) -> None:
        self.capacity = capacity_mb if capacity_mb > 0 else machine_memory_mb()
        self.reserved = 0

    @property
    def free(self) -> int:
        return self.capacity - self.reserved

    def try_reserve(self, mb: int) -> bool:
        if self.reserved + mb > self.capacity:
            return False
        self.reserved += mb
        return True

    def release(self, mb: int) -> None:
        self.reserved = max(0, self.reserved - mb)
