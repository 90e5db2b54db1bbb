"""Inbound webhooks: ``/v1/webhooks``.

``POST /v1/webhooks/{name}`` takes any request a service sends, checks its signature
when the webhook has a secret, and answers 202 once its event is durable on the
webhook's topic; a missing or wrong signature gets 401 and publishes nothing. These
requests need no API token: a webhook is authenticated by its signature alone, and one
without a secret accepts anyone who can reach the server. A body over the
``async_payload_limit`` is refused (413) as it streams in, before the signature is
checked; a JSON body nested deeper than the ``json_depth_limit`` gets 400.

Definitions are managed with the deploy scope (``PUT``, ``DELETE``) and read with the
read scope; ``triggerfish deploy`` puts those of the manifest's ``webhooks:``.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError as PydanticValidationError

from triggerfish.api.deps import control_of, node_of, require
from triggerfish.api.problems import problem
from triggerfish.api.raw import RawRequest
from triggerfish.errors import ConfigError, PayloadTooLargeError
from triggerfish.events.depth import check_depth
from triggerfish.events.model import is_json_content_type
from triggerfish.functions.fields import NAME_RE, NAME_RULE
from triggerfish.functions.webhooks import WebhookConfig
from triggerfish.observe.tracing import IngestTrace
from triggerfish.sources.webhooks import (
    SignatureError,
    check_secret,
    public_json,
    verify,
    webhook_event,
)

log = logging.getLogger("triggerfish.webhooks")

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])


def _check_name(name: str) -> None:
    if not NAME_RE.match(name):
        raise ConfigError(f"webhook name: expected {NAME_RULE}, got {name!r}")


@router.put("/{name}", dependencies=[Depends(require("deploy"))])
async def put_webhook(name: str, request: Request) -> dict[str, Any]:
    _check_name(name)
    try:
        config = WebhookConfig.model_validate_json(await request.body())
    except PydanticValidationError as exc:
        details = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(body)'}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"webhook {name}: {details}") from None
    check_secret(config, where=f"webhook {name}")
    await control_of(request).webhooks.put(name, config)
    return public_json(name, config)


@router.get("", dependencies=[Depends(require("read"))])
async def list_webhooks(request: Request) -> dict[str, Any]:
    webhooks = await control_of(request).webhooks.all()
    return {"webhooks": [public_json(name, config) for name, config in webhooks.items()]}


@router.get("/{name}", dependencies=[Depends(require("read"))])
async def get_webhook(name: str, request: Request) -> dict[str, Any]:
    return public_json(name, await control_of(request).webhooks.get(name))


@router.delete("/{name}", status_code=204, dependencies=[Depends(require("deploy"))])
async def delete_webhook(name: str, request: Request) -> None:
    await control_of(request).webhooks.delete(name)


@router.post("/{name}", status_code=202)
async def receive(name: str, request: Request) -> JSONResponse:
    """Turn the request into a CloudEvent on the webhook's topic (no API token: the
    signature, when the webhook has a secret, is the authentication)."""
    node = node_of(request)
    config = await node.control.webhooks.get(name)
    settings = node.settings
    limit = settings.async_payload_limit
    # Counted as it streams in, before the signature is checked (``api.limits`` has
    # refused a body over the limit before this route runs; this keeps the route safe
    # on its own).
    body = await RawRequest(request.scope, request.receive).body(
        limit,
        lambda: PayloadTooLargeError(
            f"the request body is over the limit of {limit} bytes for a webhook "
            "(async_payload_limit)"
        ),
    )
    headers = dict(request.headers)
    try:
        secret = await node.control.webhooks.signing_secret(name, config)
        signature = verify(config, headers, body, secret=secret)
    except SignatureError as exc:
        log.warning("webhook %s: refused a request: %s", name, exc)
        return problem(401, "invalid-signature", str(exc))
    except ConfigError as exc:
        log.error("webhook %s: %s", name, exc)
        return problem(500, "webhook-misconfigured", f"webhook {name!r} cannot check signatures")
    if body and is_json_content_type(headers.get("content-type") or "application/octet-stream"):
        check_depth(body, settings.json_depth_limit, what="the webhook's JSON body")
    node.disk.admit()  # no new event while the disk is low (observe/disk.py)
    event = webhook_event(name, config, headers, body, signature=signature)
    if node.tracer is None:
        (stored,) = await node.control.topics.publish(config.topic, [event])
    else:
        trace = IngestTrace(
            node.tracer,
            f"webhook {name}",
            headers,
            {"http.route": "/v1/webhooks/{name}", "messaging.destination.name": config.topic},
        )
        (stored,) = await node.control.topics.publish(config.topic, trace.stamp([event]))
        trace.finished(202)
    return JSONResponse(
        {
            "webhook": name,
            "topic": config.topic,
            "id": stored.id,
            "offset": stored.offset,
            "duplicate": stored.duplicate,
        },
        status_code=202,
    )
