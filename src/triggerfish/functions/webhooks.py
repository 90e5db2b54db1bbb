"""Webhooks in the manifest: ``webhooks: {name: {topic, secret, format, ...}}``.

A webhook turns what a service POSTs to ``/v1/webhooks/<name>`` into a CloudEvent on
``topic``. With a ``secret`` every request must carry a valid signature; without one
the webhook is open to anyone who can reach the server.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from triggerfish.bus.names import TOPIC_RULE
from triggerfish.functions.fields import DURATION_RULE, PLAIN, Duration, StrictModel, TopicName

WebhookFormat = Literal["plain", "github", "timestamped"]

#: The header that carries the signature, by format, unless ``header`` names another.
DEFAULT_HEADERS: dict[str, str] = {
    "plain": "X-Signature-256",
    "github": "X-Hub-Signature-256",
    "timestamped": "X-Webhook-Signature",
}


class WebhookConfig(StrictModel):
    """One inbound webhook."""

    topic: TopicName = Field(description=TOPIC_RULE)
    secret: str | None = Field(
        default=None,
        description="the signing secret, or env:NAME to read it from the server's environment",
    )
    format: WebhookFormat = Field(
        default="plain",
        description='"plain" (hex HMAC-SHA256 of the body), "github" (sha256=<hex>) or '
        '"timestamped" (t=<unix>,v1=<hex> over "<t>.<body>")',
    )
    header: str | None = Field(
        default=None, description="the signature header (default depends on format)"
    )
    tolerance: Duration = Field(
        default=300,
        gt=0,
        description=f"{DURATION_RULE}: for timestamped, how old a signature may be",
    )
    type: str | None = Field(
        default=None,
        description='the CloudEvents type (default "triggerfish.webhook", or '
        '"com.github.<event>" for github)',
    )
    source: str | None = Field(
        default=None, description="the CloudEvents source (default triggerfish://webhooks/<name>)"
    )

    @model_validator(mode="after")
    def _header(self) -> WebhookConfig:
        if self.header is not None and not self.header.strip():
            raise PydanticCustomError(PLAIN, "header must not be empty")
        return self

    @property
    def signature_header(self) -> str:
        return self.header or DEFAULT_HEADERS[self.format]
