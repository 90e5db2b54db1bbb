"""The chain of an event or an invocation: ``GET /v1/chains/{id}``.

The answer is a graph: ``nodes`` (events and invocations, oldest first) and ``edges``
(``from`` an event ``to`` each invocation that handled it, ``from`` an invocation ``to``
each event it emitted), for the whole correlation ``id`` belongs to; ``truncated`` when
the chain has more than the nodes given (``limit``, at most 500).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from triggerfish.api.deps import control_of, require
from triggerfish.control.chains import LIMIT, Chain, event_time

router = APIRouter(prefix="/v1", tags=["invocations"])


def chain_json(chain: Chain) -> dict[str, Any]:
    nodes: list[tuple[float, dict[str, Any]]] = [
        (
            event_time(event),
            {
                "kind": "event",
                "id": event.id,
                "topic": event.topic,
                "type": event.type,
                "source": event.source,
                "time": event.time,
            },
        )
        for event in chain.events
    ]
    nodes += [
        (
            step.started_at,
            {
                "kind": "invocation",
                "id": step.id,
                "function": step.function,
                "version": step.version,
                "status": step.status,
                "duration_ms": step.duration_ms,
                "started_at": step.started_at,
                "cold_start": step.cold_start,
                "attempt": step.attempt,
                "error_type": step.error_type,
            },
        )
        for step in chain.steps
    ]
    # Oldest first; at the same time an event before what it caused.
    nodes.sort(key=lambda node: (node[0], node[1]["kind"] != "event"))
    return {
        "id": chain.id,
        "correlation": chain.correlation,
        "nodes": [node for _, node in nodes],
        "edges": [{"from": source, "to": target} for source, target in chain.edges],
        "truncated": chain.truncated,
    }


@router.get("/chains/{id}", dependencies=[Depends(require("read"))])
async def get_chain(
    id: str,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=LIMIT)] = LIMIT,
) -> dict[str, Any]:
    """The chain that the event or invocation ``id`` belongs to."""
    chain = await control_of(request).chains.get(id, limit=limit)
    return chain_json(chain)
