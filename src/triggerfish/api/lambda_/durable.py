"""The durable execution operations of the Lambda API, under ``/2025-12-01``, as AWS's
Durable Execution SDK and boto3 call them (docs/durable.md).

``CheckpointDurableExecution`` and ``GetDurableExecutionState`` are the SDK's: the
function's own access key may call them for its executions (as may whoever may deploy
the function). ``SendDurableExecutionCallbackSuccess/Failure/Heartbeat`` need
``invoke`` on the execution's function; ``GetDurableExecution``,
``GetDurableExecutionHistory``, ``ListDurableExecutionsByFunction`` and
``StopDurableExecution`` need ``deploy`` on it. Timestamps are Unix seconds, which
botocore reads as it reads Lambda's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from triggerfish.api.lambda_.auth import principal
from triggerfish.api.lambda_.errors import LambdaError, LambdaRoute, invalid_parameter
from triggerfish.api.lambda_.paging import json_response
from triggerfish.api.lambda_.shapes import qualifier_or_live, split_name
from triggerfish.durable import DurableExecutions, ExecutionRecord, execution_id_of
from triggerfish.durable import history as histories
from triggerfish.durable.store import STATUSES
from triggerfish.errors import ConflictError
from triggerfish.security.permissions import DEPLOY, INVOKE, Principal

if TYPE_CHECKING:
    from triggerfish.node import Node

PREFIX = "/2025-12-01"
MAX_ITEMS = 1000


def create_durable_router(node: Node) -> APIRouter:
    """The durable execution operations over ``node``."""
    router = APIRouter(prefix=PREFIX, tags=["lambda"], route_class=LambdaRoute)

    def durable() -> DurableExecutions:
        return node.durable

    async def caller(request: Request) -> tuple[Principal, bytes]:
        body = await request.body()
        return await principal(node, request, body), body

    async def execution_for(who: Principal, arn: str, action: str) -> ExecutionRecord:
        record = await durable().store.get(execution_id_of(arn))
        who.require(action, record.function)
        return record

    async def own_execution(who: Principal, arn: str) -> None:
        """The SDK's operations: the function's own key, or ``deploy`` on it."""
        function = await durable().function_of(execution_id_of(arn))
        if who.function != function:
            who.require(DEPLOY, function)

    @router.post("/durable-executions/{arn:path}/checkpoint", summary="CheckpointDurableExecution")
    async def checkpoint(arn: str, request: Request) -> Response:
        who, body = await caller(request)
        await own_execution(who, arn)
        document = _json(body)
        token = document.get("CheckpointToken")
        updates = document.get("Updates") or []
        if not isinstance(token, str) or not token:
            raise invalid_parameter("CheckpointToken is required")
        if not isinstance(updates, list):
            raise invalid_parameter("Updates must be a list of OperationUpdate objects")
        for update in updates:
            # A chained invoke runs another function: the caller must be allowed to.
            if isinstance(update, dict) and update.get("Type") == "CHAINED_INVOKE":
                options = update.get("ChainedInvokeOptions") or {}
                target = options.get("FunctionName") if isinstance(options, dict) else None
                if isinstance(target, str):
                    function, qualifier = split_name(target, None)
                    who.require(INVOKE, f"{function}:{qualifier_or_live(qualifier)}")
        next_token, changed = await durable().checkpoint(arn, token, updates)
        answer: dict[str, Any] = {"NewExecutionState": {"Operations": changed}}
        if next_token is not None:
            answer["CheckpointToken"] = next_token
        return json_response(answer)

    @router.get("/durable-executions/{arn:path}/state", summary="GetDurableExecutionState")
    async def state(arn: str, request: Request) -> Response:
        who, _ = await caller(request)
        await own_execution(who, arn)
        query = request.query_params
        token = query.get("CheckpointToken")
        if not token:
            raise invalid_parameter("CheckpointToken is required")
        found, marker = await durable().state(arn, token, query.get("Marker"), _max(request))
        answer: dict[str, Any] = {"Operations": found}
        if marker is not None:
            answer["NextMarker"] = marker
        return json_response(answer)

    @router.get("/durable-executions/{arn:path}/history", summary="GetDurableExecutionHistory")
    async def history(arn: str, request: Request) -> Response:
        who, _ = await caller(request)
        record = await execution_for(who, arn, DEPLOY)
        operations = [doc for _, doc in await durable().store.operations(record.id, limit=100_000)]
        events = histories.events(operations)
        if request.query_params.get("ReverseOrder") == "true":
            events.reverse()
        start = _marker(request.query_params.get("Marker"))
        limit = _max(request)
        page = events[start : start + limit]
        answer: dict[str, Any] = {"Events": page}
        if start + limit < len(events):
            answer["NextMarker"] = str(start + limit)
        return json_response(answer)

    @router.post("/durable-executions/{arn:path}/stop", summary="StopDurableExecution")
    async def stop(arn: str, request: Request) -> Response:
        who, body = await caller(request)
        record = await execution_for(who, arn, DEPLOY)
        error = _json(body).get("Error") if body else None
        try:
            stopped = await durable().store.stop(
                record.id, error if isinstance(error, dict) else None
            )
        except ConflictError as exc:
            raise LambdaError(409, "ResourceConflictException", str(exc)) from None
        return json_response({"StopTimestamp": stopped.ended_at})

    @router.get("/durable-executions/{arn:path}", summary="GetDurableExecution")
    async def get_execution(arn: str, request: Request) -> Response:
        who, _ = await caller(request)
        record = await execution_for(who, arn, DEPLOY)
        return json_response(describe(durable(), record, full=True))

    @router.get("/functions/{name}/durable-executions", summary="ListDurableExecutionsByFunction")
    async def list_executions(name: str, request: Request) -> Response:
        who, _ = await caller(request)
        function, _qualifier = split_name(name, request.query_params.get("Qualifier"))
        who.require(DEPLOY, function)
        statuses = request.query_params.getlist("Statuses")
        for status in statuses:
            if status not in STATUSES:
                raise invalid_parameter(f"Statuses: {status!r} is not one of {', '.join(STATUSES)}")
        limit = _max(request)
        before = request.query_params.get("Marker")
        found = await durable().store.find(
            function,
            statuses=statuses,
            limit=limit + 1,
            before=float(before) if before else None,
            name=request.query_params.get("DurableExecutionName"),
        )
        page = found[:limit]
        answer: dict[str, Any] = {
            "DurableExecutions": [describe(durable(), record) for record in page]
        }
        if len(found) > limit:
            answer["NextMarker"] = repr(page[-1].started_at)
        return json_response(answer)

    @router.post(
        "/durable-execution-callbacks/{callback_id}/succeed",
        summary="SendDurableExecutionCallbackSuccess",
    )
    async def callback_success(callback_id: str, request: Request) -> Response:
        return await _callback(callback_id, request, "succeed")

    @router.post(
        "/durable-execution-callbacks/{callback_id}/fail",
        summary="SendDurableExecutionCallbackFailure",
    )
    async def callback_failure(callback_id: str, request: Request) -> Response:
        return await _callback(callback_id, request, "fail")

    @router.post(
        "/durable-execution-callbacks/{callback_id}/heartbeat",
        summary="SendDurableExecutionCallbackHeartbeat",
    )
    async def callback_heartbeat(callback_id: str, request: Request) -> Response:
        return await _callback(callback_id, request, "heartbeat")

    async def _callback(callback_id: str, request: Request, kind: str) -> Response:
        try:
            return await _complete(callback_id, request, kind)
        except ConflictError as exc:
            raise LambdaError(409, "ResourceConflictException", str(exc)) from None

    async def _complete(callback_id: str, request: Request, kind: str) -> Response:
        who, body = await caller(request)
        store = durable().store
        # Who may complete it is checked against its function before it changes.
        record = await store.execution_of_callback(callback_id)
        if who.function != record.function:
            who.require(INVOKE, record.function)
        if kind == "succeed":
            await store.complete_callback(callback_id, result=body.decode("utf-8", "replace"))
        elif kind == "fail":
            error = _json(body).get("Error") if body else None
            await store.complete_callback(
                callback_id,
                error=error if isinstance(error, dict) else {"ErrorType": "CallbackFailed"},
            )
        else:
            await store.complete_callback(callback_id, heartbeat=True)
        return json_response({})

    return router


def describe(
    executions: DurableExecutions, record: ExecutionRecord, *, full: bool = False
) -> dict[str, Any]:
    """An execution in Lambda's shape (``Execution``, or ``GetDurableExecution``'s)."""
    arn = executions.arn(record)
    function_arn = arn.split("/", 1)[0]
    answer: dict[str, Any] = {
        "DurableExecutionArn": arn,
        "DurableExecutionName": record.name,
        "FunctionArn": function_arn,
        "Status": record.status,
        "StartTimestamp": record.started_at,
    }
    if record.ended_at is not None:
        answer["EndTimestamp"] = record.ended_at
    if full:
        answer["InputPayload"] = record.input
        answer["Version"] = record.qualifier
        if record.result is not None:
            answer["Result"] = record.result
        if record.error:
            answer["Error"] = record.error
        answer["ExpectedExecutionTimeoutTimestamp"] = record.timeout_at
    return answer


def _json(body: bytes) -> dict[str, Any]:
    try:
        document = orjson.loads(body or b"{}")
    except orjson.JSONDecodeError as exc:
        raise LambdaError(
            400, "InvalidRequestContentException", f"the body is not JSON: {exc}"
        ) from None
    if not isinstance(document, dict):
        raise LambdaError(400, "InvalidRequestContentException", "the body must be a JSON object")
    return document


def _max(request: Request) -> int:
    text = request.query_params.get("MaxItems")
    if text is None:
        return MAX_ITEMS
    if not text.isdigit() or not 1 <= int(text) <= MAX_ITEMS:
        raise invalid_parameter(f"MaxItems must be an integer from 1 to {MAX_ITEMS}")
    return int(text)


def _marker(text: str | None) -> int:
    if text is None:
        return 0
    if not text.isdigit():
        raise invalid_parameter("Marker is not one this operation returned")
    return int(text)
