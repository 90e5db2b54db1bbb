"""Durable executions for the console and the CLI: ``/v1/executions`` (docs/durable.md).

A list, newest first, and one execution with its operations in the order they were
checkpointed, each with its timing, status, result or error."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from triggerfish.api.deps import node_of, require
from triggerfish.durable import ExecutionRecord
from triggerfish.durable.operations import wire
from triggerfish.durable.store import STATUSES
from triggerfish.errors import ValidationError

router = APIRouter(prefix="/v1", tags=["executions"])


def execution_json(node: Any, record: ExecutionRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "arn": node.durable.arn(record),
        "function": record.function,
        "name": record.name,
        "version": record.qualifier,
        "status": record.status,
        "started_at": record.started_at,
        "ended_at": record.ended_at,
        "timeout_at": record.timeout_at,
        "input": record.input,
        "result": record.result,
        "error": record.error,
    }


def operation_json(document: dict[str, Any]) -> dict[str, Any]:
    doc = wire(document)
    details: dict[str, Any] = next((v for k, v in doc.items() if k.endswith("Details")), {}) or {}
    return {
        "id": doc["Id"],
        "parent_id": doc.get("ParentId"),
        "name": doc.get("Name"),
        "type": doc["Type"],
        "sub_type": doc.get("SubType"),
        "status": doc["Status"],
        "started_at": doc.get("StartTimestamp"),
        "ended_at": doc.get("EndTimestamp"),
        "attempt": details.get("Attempt"),
        "result": details.get("Result"),
        "error": details.get("Error"),
        "scheduled_end": details.get("ScheduledEndTimestamp")
        or details.get("NextAttemptTimestamp"),
        "callback_id": details.get("CallbackId"),
    }


@router.get("/executions", dependencies=[Depends(require("read"))])
async def list_executions(
    request: Request,
    function: str | None = None,
    status: Annotated[list[str] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Durable executions, newest first; of one function, in some statuses."""
    for value in status or ():
        if value not in STATUSES:
            raise ValidationError(
                f"status {value!r} is not one of {', '.join(STATUSES)}", field="status"
            )
    node = node_of(request)
    found = await node.durable.store.find(function, statuses=status or (), limit=limit)
    return {"executions": [execution_json(node, record) for record in found]}


@router.get("/executions/{execution_id}", dependencies=[Depends(require("read"))])
async def get_execution(request: Request, execution_id: str) -> dict[str, Any]:
    """One execution (by id or ARN) with its operations."""
    node = node_of(request)
    execution_id = execution_id.rsplit("/", 1)[-1]
    record = await node.durable.store.get(execution_id)
    operations = await node.durable.store.operations(record.id, limit=100_000)
    return {
        **execution_json(node, record),
        "operations": [operation_json(doc) for _, doc in operations],
    }
