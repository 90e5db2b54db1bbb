"""A cluster of `triggerfish up` processes on this machine, sharing a fresh PostgreSQL
database and a NATS JetStream prefix of their own, removed again at the end."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from pathlib import Path

from support.server import Server
from support.services import POSTGRES_USER, require_port

POSTGRES = "127.0.0.1", 5432
NATS = "127.0.0.1", 4222
#: Files a node creates on first start that every other node must share (the admin
#: token, and the key that encrypts access-key secrets in the shared store).
SHARED_FILES = ("admin.token", "access-keys.key")


async def _postgres(statement: str) -> None:
    import asyncpg

    host, port = POSTGRES
    admin = await asyncpg.connect(host=host, port=port, user=POSTGRES_USER, database="test")
    try:
        await admin.execute(statement)
    finally:
        await admin.close()


async def _drop_streams(prefix: str) -> None:
    import nats

    client = await nats.connect(f"nats://{NATS[0]}:{NATS[1]}")
    try:
        js = client.jetstream()
        for info in await js.streams_info():
            if info.config.name and info.config.name.startswith(prefix):
                await js.delete_stream(info.config.name)
    finally:
        await client.close()


class Cluster:
    def __init__(self, root: Path, *, size: int, env: dict[str, str] | None = None) -> None:
        require_port(*POSTGRES, "PostgreSQL")
        require_port(*NATS, "NATS")
        run = uuid.uuid4().hex[:10]
        self.database = f"tf_cluster_{run}"
        self.prefix = f"tfc{run}"
        host, port = POSTGRES
        self.store_url = f"postgresql://{POSTGRES_USER}@{host}:{port}/{self.database}"
        self.bus_url = f"nats://{NATS[0]}:{NATS[1]}?prefix={self.prefix}"
        cluster_env = {
            "TRIGGERFISH_STORE": self.store_url,
            "TRIGGERFISH_BUS": self.bus_url,
            **(env or {}),
        }
        self.nodes = [Server(root / f"node{i + 1}", env=cluster_env) for i in range(size)]
        asyncio.run(_postgres(f'CREATE DATABASE "{self.database}"'))

    def start(self, *args: str) -> Cluster:
        """Start the first node, give the others its shared files, then start them."""
        first, *others = self.nodes
        first.start(*args)
        for node in others:
            self.share_files(node)
            node.start()
        return self

    def share_files(self, node: Server) -> None:
        node.data_dir.mkdir(parents=True, exist_ok=True)
        for name in SHARED_FILES:
            source = self.nodes[0].data_dir / name
            if source.exists() and not (node.data_dir / name).exists():
                shutil.copy2(source, node.data_dir / name)

    def close(self) -> None:
        for node in self.nodes:
            node.stop()
        asyncio.run(_postgres(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)'))
        asyncio.run(_drop_streams(self.prefix))
