"""Templates written for AWS (SAM, serverless.yml) read as a Triggerfish ``Manifest``."""

from triggerfish.functions.templates.common import (
    SERVER_URL,
    Output,
    TemplateResult,
    Unsupported,
    map_runtime,
)

__all__ = ["SERVER_URL", "Output", "TemplateResult", "Unsupported", "map_runtime"]
