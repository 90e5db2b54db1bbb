"""Durable functions: AWS's Durable Execution SDK checkpoints through the Lambda API,
and executions suspend, wait and resume without holding an environment
(docs/durable.md)."""

from triggerfish.durable.executions import (
    RESUME,
    DurableExecutions,
    execution_arn,
    execution_id_of,
    resume_payload,
    resumed_execution,
)
from triggerfish.durable.executor import DurableExecutor
from triggerfish.durable.store import DurableStore, ExecutionRecord

__all__ = [
    "RESUME",
    "DurableExecutions",
    "DurableExecutor",
    "DurableStore",
    "ExecutionRecord",
    "execution_arn",
    "execution_id_of",
    "resume_payload",
    "resumed_execution",
]
