"""Function names as Lambda accepts them, and function versions as Lambda describes them.

A function is named ``name``, ``name:qualifier``, ``account:function:name[:qualifier]``
or by its full ARN ``arn:aws:lambda:region:account:function:name[:qualifier]`` (any
region and account: one installation is one account). A qualifier is an alias, a version
number, a version id or ``$LATEST`` (the newest version); none means ``live``.

``configuration`` gives the ``FunctionConfiguration`` of one version: its ``Version`` is
the version number, as Lambda numbers published versions.
"""

from __future__ import annotations

import base64
import math
import platform
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from triggerfish.api.lambda_.errors import invalid_parameter
from triggerfish.control import LIVE, VersionRecord
from triggerfish.functions.references import shown
from triggerfish.runtime.base import ACCOUNT, DEFAULT_REGION

LATEST = "$LATEST"

_ARN = re.compile(r"^arn:[\w-]+:lambda:[\w-]*:\d*:function:([^:]+)(?::([^:]+))?$")
_PARTIAL = re.compile(r"^\d{12}:function:([^:]+)(?::([^:]+))?$")
_PLAIN = re.compile(r"^([^:]+)(?::([^:]+))?$")


def function_arn(
    function: str, qualifier: str | None = None, *, region: str = DEFAULT_REGION
) -> str:
    """The ARN of ``function`` in ``region`` (the node's: ``Settings.region``)."""
    arn = f"arn:aws:lambda:{region}:{ACCOUNT}:function:{function}"
    return f"{arn}:{qualifier}" if qualifier else arn


def split_name(name: str, qualifier: str | None) -> tuple[str, str | None]:
    """(function, qualifier or None) from a FunctionName and a ``Qualifier`` parameter."""
    match = _ARN.match(name) or _PARTIAL.match(name) or _PLAIN.match(name)
    if match is None:
        raise invalid_parameter(
            f"{name!r} is not a function name, 'name:qualifier' or a function ARN "
            "(arn:aws:lambda:region:account:function:name[:qualifier])"
        )
    function, derived = match.group(1), match.group(2)
    if derived and qualifier and derived != qualifier:
        raise invalid_parameter(
            f"The derived qualifier from the function name ({derived!r}) does not match "
            f"the specified qualifier ({qualifier!r})."
        )
    return function, derived or qualifier or None


def qualifier_or_live(qualifier: str | None) -> str:
    return qualifier or LIVE


def _last_modified(moment: float) -> str:
    stamp = datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return f"{stamp[:-3]}+0000"


def _architecture() -> str:
    return "arm64" if platform.machine().lower() in ("arm64", "aarch64") else "x86_64"


def configuration(
    version: VersionRecord,
    *,
    qualifier: str | None = None,
    label: str | None = None,
    code_size: int = 0,
    region: str = DEFAULT_REGION,
) -> dict[str, Any]:
    """``label``: the ``Version`` to show (``$LATEST``), the number otherwise."""
    settings = version.settings
    digest = bytes.fromhex(version.digest)
    snapstart = settings.snapstart
    shape: dict[str, Any] = {
        "FunctionName": version.function,
        "FunctionArn": function_arn(version.function, qualifier, region=region),
        "Runtime": settings.runtime,
        "Role": f"arn:aws:iam::{ACCOUNT}:role/triggerfish",
        "Handler": settings.handler,
        "CodeSize": code_size,
        "Description": "",
        "Timeout": max(1, math.ceil(settings.timeout)),
        "MemorySize": settings.memory,
        "LastModified": _last_modified(version.created_at),
        "CodeSha256": base64.b64encode(digest).decode("ascii"),
        "Version": label or str(version.number),
        "TracingConfig": {"Mode": "PassThrough"},
        "RevisionId": str(uuid.UUID(bytes=digest[:16])),
        "State": "Active",
        "LastUpdateStatus": "Successful",
        "PackageType": "Zip",
        "Architectures": [_architecture()],
        "EphemeralStorage": {"Size": 512},
        "SnapStart": {
            "ApplyOn": "PublishedVersions" if snapstart else "None",
            "OptimizationStatus": "On" if snapstart else "Off",
        },
        "LoggingConfig": {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{version.function}"},
    }
    logs = settings.logging
    if logs.format == "json":
        shape["LoggingConfig"].update(
            LogFormat="JSON",
            ApplicationLogLevel=logs.level or "INFO",
            SystemLogLevel=logs.system_level or "INFO",
        )
    if settings.environment:
        # A variable that refers to a secret reads "secret:NAME", never the value.
        variables = {key: shown(value) for key, value in settings.environment.items()}
        shape["Environment"] = {"Variables": variables}
    if settings.durable is not None:
        shape["DurableConfig"] = {
            "ExecutionTimeout": settings.durable.execution_timeout,
            "RetentionPeriodInDays": settings.durable.retention // 86400,
        }
    return shape
