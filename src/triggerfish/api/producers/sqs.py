"""SQS's ``SendMessage``, ``SendMessageBatch`` and ``GetQueueUrl``: a queue is a topic.

The queue of a ``QueueUrl`` is its last path segment (``http://host:8080/000000000000/
orders`` is the topic ``orders``); ``GetQueueUrl`` answers such a URL on the address
the request came to. Sending needs the ``publish`` permission on the topic (so does
``GetQueueUrl``). Each message becomes an event (see ``events.sqs``); the answer carries
``MD5OfMessageBody`` and ``MD5OfMessageAttributes`` as SQS computes them, which SDKs
check. ``DelaySeconds`` is accepted and not honoured: a message is delivered at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from triggerfish.api.producers.errors import AwsError
from triggerfish.bus.names import TOPIC_PATTERN
from triggerfish.errors import NotFoundError, PermissionDeniedError
from triggerfish.events import sqs
from triggerfish.events.model import Event
from triggerfish.runtime.base import ACCOUNT
from triggerfish.security.permissions import PUBLISH, Principal

if TYPE_CHECKING:
    from triggerfish.node import Node

MAX_BATCH = 10
_QUEUE_ERRORS = {
    "QueueDoesNotExist": "AWS.SimpleQueueService.NonExistentQueue",
    "EmptyBatchRequest": "AWS.SimpleQueueService.EmptyBatchRequest",
    "TooManyEntriesInBatchRequest": "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
    "BatchEntryIdsNotDistinct": "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
    "BatchRequestTooLong": "AWS.SimpleQueueService.BatchRequestTooLong",
    "InvalidBatchEntryId": "AWS.SimpleQueueService.InvalidBatchEntryId",
}


def sqs_error(code: str, message: str, status: int = 400) -> AwsError:
    return AwsError(status, code, message, query_code=_QUEUE_ERRORS.get(code, code))


def no_queue(name: str) -> AwsError:
    return sqs_error(
        "QueueDoesNotExist",
        f"The specified queue does not exist: create the topic {name!r} "
        f"(triggerfish topics create {name}).",
    )


def _queue(document: Mapping[str, Any], who: Principal) -> str:
    url = document.get("QueueUrl")
    if not isinstance(url, str) or not url:
        raise sqs_error("MissingParameter", "The request must contain the parameter QueueUrl.")
    name = urlsplit(url).path.rstrip("/").rpartition("/")[2] if "/" in url else url
    if not TOPIC_PATTERN.match(name) or name.startswith("_"):
        raise no_queue(name)
    _require(who, name)
    return name


def _require(who: Principal, name: str) -> None:
    try:
        who.require(PUBLISH, name)
    except PermissionDeniedError as exc:
        raise sqs_error("AccessDenied", str(exc)) from None


def _message(queue: str, fields: Mapping[str, Any], sender: str) -> tuple[Event, dict[str, str]]:
    """The event of one message, and the digests SQS answers with."""
    attributes = sqs.check_attributes(fields.get("MessageAttributes"))
    event = sqs.message_event(
        queue,
        fields.get("MessageBody"),
        attributes=attributes,
        group_id=fields.get("MessageGroupId"),
        deduplication_id=fields.get("MessageDeduplicationId"),
        sender=sender,
    )
    digests = {"MD5OfMessageBody": sqs.md5_hex(event.data or b"")}
    if attributes:
        digests["MD5OfMessageAttributes"] = sqs.md5_of_attributes(attributes)
    return event, digests


async def _publish(node: Node, queue: str, events: list[Event]) -> list[tuple[str, int]]:
    """The message id and the offset of each event once stored."""
    node.disk.admit()  # no new event while the disk is low (observe/disk.py)
    try:
        results = await node.control.topics.publish(queue, events)
    except NotFoundError:
        raise no_queue(queue) from None
    return [(r.id, r.offset) for r in results]


def _answer(event: Event, digests: dict[str, str], stored: tuple[str, int]) -> dict[str, Any]:
    answer: dict[str, Any] = {**digests, "MessageId": stored[0]}
    if sqs.GROUP_ID in event.extensions:
        answer["SequenceNumber"] = str(stored[1])
    return answer


async def send_message(
    node: Node, who: Principal, sender: str, document: Mapping[str, Any]
) -> dict[str, Any]:
    queue = _queue(document, who)
    try:
        event, digests = _message(queue, document, sender)
    except sqs.MessageError as exc:
        raise sqs_error(exc.code, str(exc)) from None
    [stored] = await _publish(node, queue, [event])
    return _answer(event, digests, stored)


def _check_batch(entries: Any) -> list[dict[str, Any]]:
    if not isinstance(entries, list) or not entries:
        raise sqs_error(
            "EmptyBatchRequest",
            "There should be at least one SendMessageBatchRequestEntry in the request.",
        )
    if len(entries) > MAX_BATCH:
        raise sqs_error(
            "TooManyEntriesInBatchRequest",
            f"Maximum number of entries per request are {MAX_BATCH}. You have sent {len(entries)}.",
        )
    ids = [e.get("Id") if isinstance(e, dict) else None for e in entries]
    for entry_id in ids:
        if not isinstance(entry_id, str) or not entry_id or len(entry_id) > 80:
            raise sqs_error(
                "InvalidBatchEntryId",
                "A batch entry id can only contain alphanumeric characters, hyphens and "
                "underscores. It can be at most 80 letters long.",
            )
    if len(set(ids)) != len(ids):
        raise sqs_error(
            "BatchEntryIdsNotDistinct", "Two or more batch entries in the request have the same Id."
        )
    total = 0
    for entry in entries:
        body = entry.get("MessageBody")
        if isinstance(body, str):
            try:
                attributes = sqs.check_attributes(entry.get("MessageAttributes"))
            except sqs.MessageError:
                attributes = {}
            total += sqs.message_size(body, attributes)
    if total > sqs.MAX_MESSAGE_SIZE:
        raise sqs_error(
            "BatchRequestTooLong",
            f"Batch requests cannot be longer than {sqs.MAX_MESSAGE_SIZE} bytes. "
            f"You have sent {total} bytes.",
        )
    return entries


async def send_message_batch(
    node: Node, who: Principal, sender: str, document: Mapping[str, Any]
) -> dict[str, Any]:
    queue = _queue(document, who)
    entries = _check_batch(document.get("Entries"))
    failed: list[dict[str, Any]] = []
    made: list[tuple[str, Event, dict[str, str]]] = []
    for entry in entries:
        try:
            event, digests = _message(queue, entry, sender)
        except sqs.MessageError as exc:
            failed.append(
                {"Id": entry["Id"], "SenderFault": True, "Code": exc.code, "Message": str(exc)}
            )
            continue
        made.append((entry["Id"], event, digests))
    stored = await _publish(node, queue, [event for _, event, _ in made]) if made else []
    successful = [
        {"Id": entry_id, **_answer(event, digests, result)}
        for (entry_id, event, digests), result in zip(made, stored, strict=True)
    ]
    return {"Successful": successful, "Failed": failed}


async def get_queue_url(
    node: Node, who: Principal, base_url: str, document: Mapping[str, Any]
) -> dict[str, Any]:
    name = document.get("QueueName")
    if not isinstance(name, str) or not name:
        raise sqs_error("MissingParameter", "The request must contain the parameter QueueName.")
    if not TOPIC_PATTERN.match(name) or name.startswith("_"):
        raise no_queue(name)
    _require(who, name)
    try:
        await node.control.topics.info(name)
    except NotFoundError:
        raise no_queue(name) from None
    return {"QueueUrl": f"{base_url}/{ACCOUNT}/{name}"}
