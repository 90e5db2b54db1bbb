"""Functions: the manifest, code packages and digests, stored code, and deploys."""

from triggerfish.functions.artifacts import ArtifactStore
from triggerfish.functions.deployer import Deployer, DeployResult
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
