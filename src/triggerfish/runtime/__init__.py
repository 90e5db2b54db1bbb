"""Execution of functions. Kept light on purpose: every execution environment imports
this package, so the executor (``triggerfish.runtime.executor``) is not imported here."""

from triggerfish.runtime.base import (
    EmitRequest,
    Executor,
    FunctionSpec,
    InvocationRequest,
    InvocationResult,
    PoolStats,
    Status,
)

__all__ = [
    "EmitRequest",
    "Executor",
    "FunctionSpec",
    "InvocationRequest",
    "InvocationResult",
    "PoolStats",
    "Status",
]
