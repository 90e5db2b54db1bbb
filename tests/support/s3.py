"""A node serving the S3 API, and boto3 clients of it, for the S3 test modules."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
from botocore.client import BaseClient
from botocore.config import Config

from support.lambda_api import new_key
from support.server import Server


@contextmanager
def s3_node(folder: Path) -> Iterator[Server]:
    """A node with its data in ``folder``, stopped on the way out."""
    server = Server(folder / "data").start()
    try:
        yield server
    finally:
        server.stop()


def s3_client(server: Server, key: tuple[str, str] | None = None, **config: Any) -> BaseClient:
    """boto3's S3 client of ``server``, signing with ``key`` (a new key when None)."""
    key_id, secret = key if key is not None else new_key(server)
    return boto3.client(
        "s3",
        endpoint_url=server.url,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=Config(**config) if config else None,
    )
