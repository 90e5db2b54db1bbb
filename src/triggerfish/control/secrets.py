"""Secrets: set, list and remove them, and know who refers to them.

Functions refer to a secret from their environment (``{secret: NAME}``) and webhooks
as their signing secret. A deploy that refers to a secret that does not exist is
refused (``check_environment``). Setting or removing a secret clears the resolved
specs on every node (``changed``), so the next environment a function starts has the
new value, and those started with the old one are retired (``control.specs``);
webhooks read theirs on every request. A secret still referred to is removed only
with ``force``: its functions then fail to start, and its webhooks answer 500, until
it is set again.

Values go in through ``set`` and out only to ``control.specs`` and ``control.webhooks``;
every listing here is names, times and references.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from triggerfish.control.webhooks import Webhooks
from triggerfish.errors import ConfigError, ConflictError, NotFoundError
from triggerfish.functions.references import SecretRef, secret_names
from triggerfish.security.secrets import SecretInfo, SecretStore, check_name
from triggerfish.store.sql import SqlStore


@dataclass(frozen=True, slots=True)
class Reference:
    """Something that refers to a secret: a function (by the variables of the versions
    its aliases point at) or a webhook."""

    kind: Literal["function", "webhook"]
    name: str
    variables: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.kind == "webhook":
            return f"webhook {self.name}"
        return f"function {self.name} ({', '.join(self.variables)})"


@dataclass(frozen=True, slots=True)
class SecretListing:
    """A secret as listed: name, times and who refers to it; never its value."""

    name: str
    created_at: float
    updated_at: float
    used_by: tuple[Reference, ...] = ()


class Secrets:
    def __init__(
        self,
        secrets: SecretStore,
        store: SqlStore,
        *,
        webhooks: Webhooks,
        changed: Callable[[], Awaitable[None]],
    ) -> None:
        self._secrets = secrets
        self._store = store
        self._webhooks = webhooks
        self._changed = changed

    async def set(self, name: str, value: str) -> tuple[SecretListing, bool]:
        """Create or replace a secret and put it in force; returns its listing and
        whether it is new."""
        info, created = await self._secrets.put(name, value)
        await self._changed()
        return await self._listing(info), created

    async def all(self) -> list[SecretListing]:
        """Every secret, by name, with who refers to it."""
        uses = await self.references()
        return [_listed(info, uses.get(info.name, ())) for info in await self._secrets.list()]

    async def get(self, name: str) -> SecretListing:
        """One secret's listing; NotFoundError when there is none."""
        check_name(name)
        info = await self._secrets.info(name)
        if info is None:
            raise NotFoundError(_no_secret(name))
        return await self._listing(info)

    async def delete(self, name: str, *, force: bool = False) -> SecretListing:
        """Remove a secret. ConflictError naming who refers to it, unless ``force``."""
        listing = await self.get(name)
        if listing.used_by and not force:
            users = "; ".join(reference.describe() for reference in listing.used_by)
            raise ConflictError(
                f"the secret {name!r} is still referred to by {users}: remove those "
                "references and deploy first, or remove it anyway with "
                f"`triggerfish secrets rm {name} --force` (they then fail until it is set "
                "again)"
            )
        await self._secrets.delete(name)
        await self._changed()
        return listing

    async def references(self) -> dict[str, tuple[Reference, ...]]:
        """Who refers to each secret: the functions whose aliased versions (``live``
        and any other alias) name it in their environment, and the webhooks."""
        found: dict[str, list[Reference]] = {}
        for function in await self._store.list_functions():
            aliased = {alias.version for alias in await self._store.list_aliases(function.name)}
            variables: dict[str, set[str]] = {}
            for version in await self._store.list_versions(function.name):
                if version.version not in aliased:
                    continue
                for variable, secret in secret_names(version.settings.environment).items():
                    variables.setdefault(secret, set()).add(variable)
            for secret, names in variables.items():
                found.setdefault(secret, []).append(
                    Reference("function", function.name, tuple(sorted(names)))
                )
        for webhook, config in (await self._webhooks.all()).items():
            if (signing := config.secret_name) is not None:
                found.setdefault(signing, []).append(Reference("webhook", webhook))
        return {name: tuple(references) for name, references in found.items()}

    async def _listing(self, info: SecretInfo) -> SecretListing:
        return _listed(info, (await self.references()).get(info.name, ()))


def _listed(info: SecretInfo, used_by: tuple[Reference, ...]) -> SecretListing:
    return SecretListing(info.name, info.created_at, info.updated_at, used_by)


def _no_secret(name: str) -> str:
    return f"no secret named {name!r}; `triggerfish secrets ls` lists them"


def missing_secret(function: str, variable: str, secret: str, *, where: str = "") -> str:
    """What to do about a function's reference to a secret that does not exist."""
    return (
        f"{where}environment.{variable}: function {function!r} refers to the secret "
        f"{secret!r}, which does not exist; set it with `triggerfish secrets set {secret}` "
        "(the value on standard input)"
    )


async def check_environment(
    secrets: SecretStore,
    function: str,
    environment: Mapping[str, str | SecretRef],
    *,
    where: str,
) -> None:
    """ConfigError for the first variable that refers to a secret that does not exist
    (``where`` starts the message: the manifest's key path)."""
    for variable, secret in secret_names(environment).items():
        if not await secrets.exists(secret):
            message = missing_secret(function, variable, secret, where=where)
            raise ConfigError(f"{message}, then deploy again")


async def secret_environment(
    secrets: SecretStore | None, function: str, environment: Mapping[str, str | SecretRef]
) -> dict[str, str]:
    """The variables of ``environment`` that refer to secrets, with the secrets' values
    now; NotFoundError naming the variable and the secret when one is gone (a trigger
    then waits and retries, its events stay on the topic)."""
    wanted = secret_names(environment)
    if not wanted:
        return {}
    values = {} if secrets is None else await secrets.values(wanted.values())
    out: dict[str, str] = {}
    for variable, secret in wanted.items():
        if secret not in values:
            raise NotFoundError(missing_secret(function, variable, secret))
        out[variable] = values[secret]
    return out
