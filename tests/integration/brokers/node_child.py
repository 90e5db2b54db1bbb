"""A Triggerfish node with every broker source, run as its own process so a test can
kill it with SIGKILL: ``node_child.py DATA_DIR MANIFEST READY_FILE``. It writes
READY_FILE once the manifest is deployed and its sources are connected."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

from integration.brokers.cases import connected, eventually
from triggerfish.config import Settings
from triggerfish.node import Node


async def main(data_dir: Path, manifest: Path, ready: Path) -> None:
    node = Node(Settings(data_dir=data_dir, shutdown_grace=1.0))
    await node.start()
    await node.control.deploy_manifest(manifest)
    await eventually(lambda: connected(node), within=60, what="the sources to connect")
    await asyncio.to_thread(ready.write_text, "ready")
    await asyncio.Event().wait()


if __name__ == "__main__":
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])))
