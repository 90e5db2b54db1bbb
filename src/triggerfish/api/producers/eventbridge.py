"""EventBridge's ``PutEvents``: each entry becomes an event on the topic its bus names
(see ``events.eventbridge``), published with the caller's ``publish`` permission on
that topic.

As EventBridge answers: at most 10 entries of at most 256 KB in all, else the whole
request is refused (``ValidationException``); otherwise an entry that is not valid,
names a topic that does not exist or that the caller may not publish to fails alone,
with its ``ErrorCode``, and the others are stored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from triggerfish.api.producers.errors import validation
from triggerfish.api.redact import without_paths
from triggerfish.bus.names import check_topic_name
from triggerfish.errors import NotFoundError, PermissionDeniedError, TriggerfishError
from triggerfish.events.eventbridge import (
    MAX_ENTRIES,
    MAX_REQUEST_SIZE,
    EntryError,
    bus_topic,
    entry_event,
    entry_size,
)
from triggerfish.events.model import Event
from triggerfish.security.permissions import PUBLISH, Principal

if TYPE_CHECKING:
    from triggerfish.node import Node


def _check_entries(document: dict[str, Any]) -> list[Any]:
    entries = document.get("Entries")
    if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_ENTRIES:
        count = len(entries) if isinstance(entries, list) else 0
        bound = (
            "greater than or equal to 1" if count == 0 else f"less than or equal to {MAX_ENTRIES}"
        )
        raise validation(
            "1 validation error detected: Value at 'entries' failed to satisfy constraint: "
            f"Member must have length {bound}"
        )
    if sum(entry_size(e) for e in entries) > MAX_REQUEST_SIZE:
        raise validation("Total size of the entries in the request is over the limit.")
    return entries


def _topic(who: Principal, entry: Any) -> str:
    topic = bus_topic(entry if isinstance(entry, dict) else {})
    try:
        check_topic_name(topic)
    except TriggerfishError as exc:
        raise EntryError("InvalidArgument", f"EventBusName {topic!r}: {exc}") from None
    if topic.startswith("_"):
        raise EntryError("InvalidArgument", f"event bus {topic!r} is internal to Triggerfish")
    try:
        who.require(PUBLISH, topic)
    except PermissionDeniedError as exc:
        raise EntryError("AccessDeniedException", str(exc)) from None
    return topic


async def put_events(node: Node, who: Principal, document: dict[str, Any]) -> dict[str, Any]:
    entries = _check_entries(document)
    answers: list[dict[str, str] | None] = [None] * len(entries)
    by_topic: dict[str, list[tuple[int, Event]]] = {}
    for index, entry in enumerate(entries):
        try:
            topic = _topic(who, entry)
            by_topic.setdefault(topic, []).append((index, entry_event(entry)))
        except EntryError as exc:
            answers[index] = {"ErrorCode": exc.code, "ErrorMessage": str(exc)}
    if by_topic:
        node.disk.admit()  # no new event while the disk is low (observe/disk.py)
    for topic, items in by_topic.items():
        try:
            results = await node.control.topics.publish(topic, [event for _, event in items])
        except NotFoundError:
            failure = {
                "ErrorCode": "ResourceNotFoundException",
                "ErrorMessage": f"Event bus {topic} does not exist (create the topic: "
                f"triggerfish topics create {topic}).",
            }
            for index, _ in items:
                answers[index] = failure
            continue
        except TriggerfishError as exc:
            for index, _ in items:
                answers[index] = {
                    "ErrorCode": "InternalFailure",
                    "ErrorMessage": without_paths(str(exc)),
                }
            continue
        for (index, _), result in zip(items, results, strict=True):
            answers[index] = {"EventId": result.id}
    shown = [a if a is not None else {"ErrorCode": "InternalFailure"} for a in answers]
    failed = sum(1 for a in shown if "ErrorCode" in a)
    return {"FailedEntryCount": failed, "Entries": shown}
