"""The Lambda API (``/2015-03-31``): Invoke and the function look-ups, for AWS SDKs."""

from triggerfish.api.lambda_.invoke import LambdaInvokeMiddleware
from triggerfish.api.lambda_.routes import create_router

__all__ = ["LambdaInvokeMiddleware", "create_router"]
