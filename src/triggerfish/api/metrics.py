"""``GET /metrics``: the node's Prometheus text exposition, without a token.

Metrics carry function names and counts, no payloads or secrets; the server listens on
127.0.0.1 unless told otherwise. Put it behind the network policy of your scraper when
it listens wider.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from triggerfish.api.deps import node_of

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    node = node_of(request)
    await node.sinks.count_pending()
    body = await node.metrics.render(sources=node.sources.stats(), sinks=node.sinks.stats())
    return Response(body, media_type=node.metrics.content_type)
