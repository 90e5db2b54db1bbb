"""Webhooks in the manifest: ``webhooks: {name: {topic, secret, format, ...}}``.

A webhook turns what a service POSTs to ``/v1/webhooks/<name>`` into a CloudEvent on
``topic``. With a ``secret`` every request must carry a valid signature; without one
the webhook is open to anyone who can reach the server.

The signing secret is one of:

- ``{secret: NAME}``: the Triggerfish secret NAME (``triggerfish secrets set NAME``),
  read when a request is checked, so setting it again rotates it without a deploy;
- ``env:NAME``: the server's environment variable NAME;
- the secret itself: the store keeps it sealed (``SealedSecret``, encrypted with the
  key file of the secrets), never as written.

A reference to a secret or a variable that does not exist is refused when the webhook
is stored. No API shows a literal secret or a sealed one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator
from pydantic_core import PydanticCustomError

from triggerfish.bus.names import TOPIC_RULE
from triggerfish.functions.fields import (
    DURATION_RULE,
    EXPECTED,
    PLAIN,
    Duration,
    StrictModel,
    TopicName,
)
from triggerfish.functions.references import (
    REFERENCE,
    SealedSecret,
    SecretRef,
    is_sealed,
    reference,
    sealed,
)

WebhookFormat = Literal["plain", "github", "timestamped"]

#: The header that carries the signature, by format, unless ``header`` names another.
DEFAULT_HEADERS: dict[str, str] = {
    "plain": "X-Signature-256",
    "github": "X-Hub-Signature-256",
    "timestamped": "X-Webhook-Signature",
}


def _secret(value: Any) -> Any:
    if value is None or isinstance(value, str | SecretRef | SealedSecret):
        return value
    if is_sealed(value):
        return sealed(value)
    if isinstance(value, Mapping):
        return reference(value)
    raise PydanticCustomError(
        EXPECTED, f"expected {REFERENCE}, env:NAME or the secret itself (a string)"
    )


WebhookSecret = Annotated[str | SecretRef | SealedSecret | None, BeforeValidator(_secret)]


def sealed_for(name: str) -> str:
    """The associated data a webhook's sealed secret is encrypted with."""
    return f"webhook:{name}"


class WebhookConfig(StrictModel):
    """One inbound webhook."""

    topic: TopicName = Field(description=TOPIC_RULE)
    secret: WebhookSecret = Field(
        default=None,
        description=f"the signing secret: {REFERENCE} (a Triggerfish secret), env:NAME (the "
        "server's environment variable) or the secret itself",
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

    @property
    def literal_secret(self) -> str | None:
        """The secret as written, when it is neither a reference nor env:NAME."""
        secret = self.secret
        return secret if isinstance(secret, str) and not secret.startswith("env:") else None

    @property
    def secret_name(self) -> str | None:
        """The Triggerfish secret this webhook signs with, if it names one."""
        return self.secret.secret if isinstance(self.secret, SecretRef) else None

    @property
    def variable_name(self) -> str | None:
        """The server's environment variable this webhook signs with, if it names one."""
        secret = self.secret
        return secret[4:] if isinstance(secret, str) and secret.startswith("env:") else None
