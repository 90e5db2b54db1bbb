"""The Lambda API (``/2015-03-31``): Invoke and the function look-ups, for AWS SDKs."""

from triggerfish.api.lambda_.errors import RESPONSES
from triggerfish.api.lambda_.invoke import INVOKE_PATH, Invocations
from triggerfish.api.lambda_.routes import create_router

__all__ = ["INVOKE_PATH", "RESPONSES", "Invocations", "create_router"]
