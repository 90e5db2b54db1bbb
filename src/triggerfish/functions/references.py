"""References to secrets in the manifest: ``{secret: NAME}``.

A function's environment maps each variable to a string or to a reference::

    environment:
      STAGE: prod
      DB_PASSWORD: {secret: db-password}

and a webhook's ``secret`` may be one too. The manifest, the store and every API keep
and show the reference, never the value: the value is read from the secrets
(``security.secrets``) when an environment is started or a signature checked.

A signing secret written as itself (a webhook's ``secret``, an HTTP route's with
``auth: hmac``) is stored as a ``SealedSecret``: encrypted by ``SecretStore.seal`` for
the webhook or route it signs, opened only where a signature is checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict
from pydantic_core import PydanticCustomError

from triggerfish.functions.fields import EXPECTED, StrictModel
from triggerfish.security.secrets import NAME_RE, NAME_RULE

REFERENCE = "{secret: NAME}"


class SecretRef(BaseModel):
    """``{secret: NAME}``: the value of the secret NAME, read where it is used."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    secret: str

    def __str__(self) -> str:
        # How a reference reads where only a string fits (Lambda's environment shape).
        return f"secret:{self.secret}"


def reference(value: Mapping[Any, Any]) -> SecretRef:
    """``{secret: NAME}`` as a ``SecretRef``; a custom error saying what is expected
    for any other mapping (the manifest loader turns it into its message)."""
    if set(value) != {"secret"}:
        raise PydanticCustomError(EXPECTED, f"expected {REFERENCE} with only the key 'secret'")
    name = value["secret"]
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise PydanticCustomError(EXPECTED, f"expected {REFERENCE} with {NAME_RULE}")
    return SecretRef(secret=name)


class SealedSecret(StrictModel):
    """A literal signing secret as the store keeps it: encrypted, for one webhook or
    one HTTP route."""

    sealed: str


def is_sealed(value: Any) -> bool:
    """Whether ``value`` is ``{sealed: ...}``, the form the store keeps a sealed secret in."""
    return isinstance(value, Mapping) and set(value) == {"sealed"}


def sealed(value: Mapping[Any, Any]) -> SealedSecret:
    """``{sealed: TEXT}`` as a ``SealedSecret``; a custom error for another shape."""
    if not isinstance(value.get("sealed"), str):
        raise PydanticCustomError(EXPECTED, "expected {sealed: TEXT} as the store keeps it")
    return SealedSecret(sealed=value["sealed"])


def _environment_value(value: Any) -> Any:
    """A string (YAML numbers and booleans become strings) or ``{secret: NAME}``."""
    if isinstance(value, SecretRef | str):
        return value
    if isinstance(value, Mapping):
        return reference(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    raise PydanticCustomError(
        EXPECTED, f"expected a string (or a number or boolean), or {REFERENCE}"
    )


#: A value of a function's ``environment``.
EnvSetting = Annotated[str | SecretRef, BeforeValidator(_environment_value)]


def secret_names(environment: Mapping[str, str | SecretRef]) -> dict[str, str]:
    """The variables of ``environment`` that refer to a secret: variable -> secret."""
    return {key: value.secret for key, value in environment.items() if isinstance(value, SecretRef)}


def shown(value: str | SecretRef) -> str:
    """A value where only a string fits: the text, or ``secret:NAME`` for a reference."""
    return str(value)
