"""Control-plane state: functions, versions, aliases, triggers, invocations, tokens."""

from triggerfish.ids import IdGenerator, id_floor, id_time, new_id
from triggerfish.store.records import (
    LIVE,
    STATUSES,
    AliasRecord,
    FunctionRecord,
    InvocationRecord,
    Status,
    StoredToken,
    TriggerRecord,
    VersionRecord,
)
from triggerfish.store.sql import LATEST, SqlStore

__all__ = [
    "LATEST",
    "LIVE",
    "STATUSES",
    "AliasRecord",
    "FunctionRecord",
    "IdGenerator",
    "InvocationRecord",
    "SqlStore",
    "Status",
    "StoredToken",
    "TriggerRecord",
    "VersionRecord",
    "id_floor",
    "id_time",
    "new_id",
]
