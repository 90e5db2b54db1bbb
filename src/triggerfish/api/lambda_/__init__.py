"""The Lambda API (``/2015-03-31``, ``/2016-08-19``): Invoke, the function look-ups and
the account settings, for AWS SDKs."""

from triggerfish.api.lambda_.account import create_account_router, is_lambda_request
from triggerfish.api.lambda_.durable import create_durable_router
from triggerfish.api.lambda_.errors import RESPONSES
from triggerfish.api.lambda_.invoke import INVOKE_PATH, Invocations
from triggerfish.api.lambda_.routes import create_router

__all__ = [
    "INVOKE_PATH",
    "RESPONSES",
    "Invocations",
    "create_account_router",
    "create_durable_router",
    "create_router",
    "is_lambda_request",
]
