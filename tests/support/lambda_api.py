"""boto3's ``lambda`` client pointed at a running Triggerfish, with an access key made
by ``triggerfish keys create``."""

from __future__ import annotations

import json

import boto3
from botocore.client import BaseClient
from botocore.config import Config

from support.server import Server


def new_key(server: Server, name: str = "tests") -> tuple[str, str]:
    """A new access key of ``server`` (S3 and Lambda APIs alike): its id and secret."""
    result = server.cli("keys", "create", "--name", name, "--json", check=True)
    body = json.loads(result.stdout)
    return body["id"], body["secret"]


def lambda_client(server: Server, key: tuple[str, str]) -> BaseClient:
    return boto3.client(
        "lambda",
        endpoint_url=server.url,
        aws_access_key_id=key[0],
        aws_secret_access_key=key[1],
        region_name="eu-west-3",
        # A throttled call must reach the test, not be retried by botocore.
        config=Config(retries={"total_max_attempts": 1}),
    )


def aws_client(server: Server, service: str, *key_options: str) -> BaseClient:
    """boto3's ``service`` client for ``server``, with a new access key made by
    ``triggerfish keys create --name SERVICE KEY_OPTIONS...``."""
    result = server.cli("keys", "create", "--name", service, *key_options, "--json", check=True)
    key = json.loads(result.stdout)
    made: BaseClient = boto3.client(
        service,
        endpoint_url=server.url,
        aws_access_key_id=key["id"],
        aws_secret_access_key=key["secret"],
        region_name="us-east-1",
    )
    return made
