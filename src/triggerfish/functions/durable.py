"""A function's ``durable`` setting: it runs durable executions (docs/durable.md).

``durable: {execution_timeout: 30d, retention: 7d}`` makes every invocation of the
function an execution that AWS's Durable Execution SDK checkpoints through the Lambda
API; ``execution_timeout`` bounds an execution from its start to its end, across all
its waits, and ``retention`` is how long a finished execution stays visible.
"""

from __future__ import annotations

from pydantic import Field

from triggerfish.functions.fields import Duration, StrictModel

#: Lambda's bounds: an execution lasts at most a year, is kept 1 to 90 days.
MAX_EXECUTION_TIMEOUT = 366 * 86400
MAX_RETENTION = 90 * 86400


class DurableSettings(StrictModel):
    execution_timeout: Duration = Field(
        default=86400,
        gt=0,
        le=MAX_EXECUTION_TIMEOUT,
        description='a duration ("15m", "30d"), at most a year; default one day',
    )
    retention: Duration = Field(
        default=14 * 86400,
        ge=86400,
        le=MAX_RETENTION,
        description='a duration ("7d") from 1 to 90 days; default 14 days',
    )
