"""Named brokers for output: ``/v1/brokers``.

``triggerfish deploy`` puts the manifest's ``brokers:`` here (deploy scope) before the
functions, whose emits and destinations may then target ``<broker>:<address>``.
Reading (read scope) shows each definition with its url redacted and its sink's
counters.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError as PydanticValidationError

from triggerfish.api.deps import control_of, require
from triggerfish.errors import ConfigError, NotFoundError
from triggerfish.functions.brokers import BrokerConfig
from triggerfish.functions.fields import NAME_RE, NAME_RULE
from triggerfish.sources.brokers.urls import redact_url

router = APIRouter(prefix="/v1/brokers", tags=["brokers"])


def _check_name(name: str) -> None:
    if not NAME_RE.match(name):
        raise ConfigError(f"broker name: expected {NAME_RULE}, got {name!r}")


def _public(name: str, body: dict[str, Any], stats: dict[str, Any] | None) -> dict[str, Any]:
    return {"name": name, **body, "url": redact_url(str(body.get("url", ""))), "stats": stats}


async def _listing(request: Request) -> list[dict[str, Any]]:
    brokers = control_of(request).brokers
    stats = {name: asdict(s) for name, s in (await brokers.stats()).items()}
    configs = await brokers.all()
    return [
        _public(name, config.model_dump(mode="json"), stats.get(name))
        for name, config in sorted(configs.items())
    ]


@router.put("/{name}", dependencies=[Depends(require("deploy"))])
async def put_broker(name: str, request: Request) -> dict[str, Any]:
    _check_name(name)
    try:
        config = BrokerConfig.model_validate_json(await request.body())
    except PydanticValidationError as exc:
        details = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(body)'}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"brokers.{name}: {details}") from None
    await control_of(request).brokers.put(name, config)
    return _public(name, config.model_dump(mode="json"), None)


@router.get("", dependencies=[Depends(require("read"))])
async def list_brokers(request: Request) -> dict[str, Any]:
    return {"brokers": await _listing(request)}


@router.get("/{name}", dependencies=[Depends(require("read"))])
async def get_broker(name: str, request: Request) -> dict[str, Any]:
    for item in await _listing(request):
        if item["name"] == name:
            return item
    raise NotFoundError(f"no broker named {name!r}; declare it under 'brokers:' and deploy")


@router.delete("/{name}", status_code=204, dependencies=[Depends(require("deploy"))])
async def delete_broker(name: str, request: Request) -> None:
    await control_of(request).brokers.delete(name)
