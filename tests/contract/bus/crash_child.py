"""Run by the crash test as a separate process, then killed with SIGKILL.

Publishes events on ``crash`` and leases some, printing each fact only after the bus has
confirmed it: ``published OFFSET`` after ``publish`` returned, ``leased OFFSET`` after
``fetch`` returned. Then it keeps publishing until it is killed.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
from pathlib import Path

from triggerfish.bus.sqlite import SqliteBus
from triggerfish.events.model import Event


async def main(path: Path, lease: float) -> None:
    bus = SqliteBus(path)
    await bus.start()
    await bus.create_topic("crash")
    await bus.subscribe("crash", "workers", start="earliest")
    counter = itertools.count(1)

    async def publish(n: int) -> None:
        batch = [Event(id=f"e{next(counter)}", source="/child", type="t") for _ in range(n)]
        for result in await bus.publish("crash", batch):
            print("published", result.offset, flush=True)

    await publish(20)
    for delivery in await bus.fetch("crash", "workers", max_count=5, lease=lease):
        print("leased", delivery.offset, flush=True)
    print("ready", flush=True)
    while True:  # concurrent publishers, so the kill lands among group commits
        await asyncio.gather(*(publish(3) for _ in range(4)))


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), float(sys.argv[2])))
