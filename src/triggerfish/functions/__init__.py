"""Functions: the manifest, code packages and digests, stored code, and deploys.

``Deployer``, ``DeployResult`` and ``ArtifactStore`` load with the store, so they are
imported when first asked for: the CLI reads manifests without loading the server."""

from typing import TYPE_CHECKING, Any

from triggerfish.functions.manifest import (
    FunctionConfig,
    Manifest,
    load_manifest,
    parse_function_config,
    parse_manifest,
)
from triggerfish.functions.package import (
    code_digest,
    pack_directory,
    unpack,
    version_digest,
    version_id,
)
from triggerfish.functions.triggers import AsyncRetry, RetryPolicy, TopicConfig, TriggerConfig

if TYPE_CHECKING:
    from triggerfish.functions.artifacts import ArtifactStore
    from triggerfish.functions.deployer import Deployer, DeployResult


def __getattr__(name: str) -> Any:
    if name == "ArtifactStore":
        from triggerfish.functions.artifacts import ArtifactStore

        return ArtifactStore
    if name in ("Deployer", "DeployResult"):
        from triggerfish.functions import deployer

        return getattr(deployer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ArtifactStore",
    "AsyncRetry",
    "DeployResult",
    "Deployer",
    "FunctionConfig",
    "Manifest",
    "RetryPolicy",
    "TopicConfig",
    "TriggerConfig",
    "code_digest",
    "load_manifest",
    "pack_directory",
    "parse_function_config",
    "parse_manifest",
    "unpack",
    "version_digest",
    "version_id",
]
