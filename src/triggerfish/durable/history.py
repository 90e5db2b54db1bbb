"""An execution's history, as ``GetDurableExecutionHistory`` returns it: an event when
each operation started and one when it ended, in the order they happened."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from triggerfish.durable.operations import Document

_TYPES = {
    "EXECUTION": "Execution",
    "CONTEXT": "Context",
    "STEP": "Step",
    "WAIT": "Wait",
    "CALLBACK": "Callback",
    "CHAINED_INVOKE": "ChainedInvoke",
}
_ENDS = {
    "SUCCEEDED": "Succeeded",
    "FAILED": "Failed",
    "CANCELLED": "Cancelled",
    "TIMED_OUT": "TimedOut",
    "STOPPED": "Stopped",
}


def events(operations: Sequence[Document]) -> list[dict[str, Any]]:
    found: list[tuple[float, int, dict[str, Any]]] = []
    for order, doc in enumerate(operations):
        kind = _TYPES.get(str(doc.get("Type")), "Operation")
        base = {key: doc[key] for key in ("Id", "Name", "SubType", "ParentId") if doc.get(key)}
        started = doc.get("StartTimestamp")
        if started is not None:
            found.append(
                (
                    float(started),
                    order,
                    {"EventType": f"{kind}Started", "EventTimestamp": started, **base},
                )
            )
        end = _ENDS.get(str(doc.get("Status")))
        ended = doc.get("EndTimestamp")
        if end is not None and ended is not None:
            found.append(
                (
                    float(ended),
                    order,
                    {"EventType": f"{kind}{end}", "EventTimestamp": ended, **base},
                )
            )
    found.sort(key=lambda item: (item[0], item[1]))
    return [{"EventId": number, **event} for number, (_, _, event) in enumerate(found, 1)]
