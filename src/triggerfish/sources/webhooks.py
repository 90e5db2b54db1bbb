"""Inbound webhooks: their stored definitions, signature checks, and the event each
request becomes. The HTTP side is ``triggerfish.api.webhooks``.

Definitions are documents of kind ``webhook`` in the store. Signatures are
HMAC-SHA256 with the webhook's secret, checked in constant time:

- ``plain``: the hex digest of the body, alone or as ``sha256=<hex>``;
- ``github``: ``X-Hub-Signature-256: sha256=<hex>``;
- ``timestamped``: ``t=<unix seconds>,v1=<hex>`` over ``"<t>.<body>"`` (several ``v1``
  while a secret is rotated); a signature older or newer than ``tolerance`` seconds is
  refused, and a replayed request within that window is a duplicate on the bus, as its
  event id is derived from its signature.

GitHub deliveries keep ``X-GitHub-Delivery`` as their event id, so a redelivery is a
duplicate too.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping

from triggerfish.bus.base import Bus
from triggerfish.errors import AuthError, ConfigError, NotFoundError
from triggerfish.events.create import new_event
from triggerfish.events.model import Event
from triggerfish.functions.webhooks import WebhookConfig
from triggerfish.sources.routes import resolve_secret, signature_matches
from triggerfish.store.sql import SqlStore

KIND = "webhook"
DEFAULT_TYPE = "triggerfish.webhook"


class SignatureError(AuthError):
    """A webhook request whose signature is missing, malformed, wrong or too old."""


async def save_webhook(
    store: SqlStore, bus: Bus, name: str, config: WebhookConfig, *, retention: float | None
) -> None:
    """Store the definition, creating its topic (with ``retention``) when it is missing."""
    if config.topic not in {topic.name for topic in await bus.topics()}:
        await bus.create_topic(config.topic, retention=retention)
    await store.documents.put(KIND, name, config.model_dump(mode="json"))


async def load_webhook(store: SqlStore, name: str) -> WebhookConfig:
    body = await store.documents.find(KIND, name)
    if body is None:
        raise NotFoundError(f"no webhook named {name!r}; declare it under 'webhooks:' and deploy")
    return WebhookConfig.model_validate(body)


def public_json(name: str, config: WebhookConfig) -> dict[str, object]:
    """A definition as the API shows it: the secret itself is never shown, sealed or
    not; a reference (``{"secret": NAME}``, ``env:NAME``) is."""
    body = config.model_dump(mode="json")
    if config.secret is not None and config.secret_name is None and config.variable_name is None:
        body["secret"] = "********"
    return {"name": name, **body, "signed": config.secret is not None}


def verify(
    config: WebhookConfig,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float | None = None,
    environ: Mapping[str, str] | None = None,
    secret: str | None = None,
) -> str | None:
    """Check the request's signature; raise SignatureError when it does not hold.

    Returns the signature that matched (None for an open webhook). ``secret``: the
    signing secret, resolved by the caller (``Control.webhooks.signing_secret``);
    without it, a literal or ``env:NAME`` secret is read here, and ConfigError says
    that the variable is not set."""
    if config.secret is None:
        return None
    if secret is None:
        if not isinstance(config.secret, str):
            raise ConfigError("the webhook's secret is kept by Triggerfish: resolve it first")
        secret = resolve_secret(config.secret, environ)
    header = config.signature_header
    given = _header(headers, header)
    if not given:
        raise SignatureError(f"missing signature header {header}")
    if config.format == "github":
        if not given.startswith("sha256="):
            raise SignatureError(f"{header} must be 'sha256=<hex digest>'")
        if not signature_matches(secret, body, given):
            raise SignatureError(f"the signature in {header} does not match the body")
        return given.removeprefix("sha256=")
    if config.format == "plain":
        if not signature_matches(secret, body, given):
            raise SignatureError(f"the signature in {header} does not match the body")
        return given.removeprefix("sha256=")
    return _verify_timestamped(config, secret, header, given, body, now)


def _verify_timestamped(
    config: WebhookConfig, secret: str, header: str, given: str, body: bytes, now: float | None
) -> str:
    stamp = ""
    candidates: list[str] = []
    for part in given.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            stamp = value
        elif key == "v1":
            candidates.append(value)
    if not stamp.isdigit() or not candidates:
        raise SignatureError(f"{header} must be 't=<unix seconds>,v1=<hex digest>'")
    age = (time.time() if now is None else now) - int(stamp)
    if abs(age) > config.tolerance:
        raise SignatureError(
            f"the signature's timestamp is {abs(age):.0f} s away from the server's clock; "
            f"at most {config.tolerance} s is accepted"
        )
    payload = stamp.encode() + b"." + body
    for candidate in candidates:
        if signature_matches(secret, payload, candidate):
            return candidate.lower()
    raise SignatureError(f"no signature in {header} matches the body")


def _header(headers: Mapping[str, str], name: str) -> str:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return ""


def webhook_event(
    name: str,
    config: WebhookConfig,
    headers: Mapping[str, str],
    body: bytes,
    *,
    signature: str | None,
) -> Event:
    """The CloudEvent a request becomes: the body byte for byte as ``data``, with the
    request's content type."""
    event_id: str | None = None
    event_type = config.type or DEFAULT_TYPE
    delivery = _header(headers, "x-github-delivery")
    if config.format == "github" or delivery:
        github_event = _header(headers, "x-github-event")
        if config.type is None and github_event:
            event_type = f"com.github.{github_event}"
        event_id = delivery or None
    if event_id is None and config.format == "timestamped" and signature is not None:
        event_id = hashlib.sha256(f"{name}:{signature}".encode()).hexdigest()[:32]
    content_type = _header(headers, "content-type") or "application/octet-stream"
    return new_event(
        event_type,
        config.source or f"triggerfish://webhooks/{name}",
        body if body else None,
        id=event_id,
        subject=name,
        datacontenttype=content_type if body else None,
    )


def check_secret(config: WebhookConfig, *, where: str) -> None:
    """A literal secret must not be blank; ``env:NAME`` must name a variable."""
    if isinstance(config.secret, str) and not config.secret.removeprefix("env:").strip():
        raise ConfigError(f"{where}.secret: expected a secret or env:NAME, got {config.secret!r}")
