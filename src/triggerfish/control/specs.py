"""``Specs``: what the executor needs to run a function, resolved from the store once
and kept until the next change.

A spec is resolved by function and qualifier (an alias, a version number or id,
``$LATEST``) and kept: the dispatcher, the invoker and the API ask on every call, and a
store read each time would cost more than the call. ``Control.invalidate_local`` drops
them all after any change of functions or aliases, so an alias that moved is followed
by the next call. The destinations of each version resolved are kept by version id
(versions never change), for the emitter.

A weighted alias resolves to the specs of both its versions (``route``), and each
``resolve`` picks one of them for the invocation it serves (``Routing.pick``): the
dispatcher, the invoker and the API all resolve once per invocation, so each runs the
version picked for it, and its record names that version.

A spec's environment gets the values of the secrets its version refers to
(``{secret: NAME}``) when it is resolved, so a secret set again is in force once the
specs are cleared (``Control.secrets`` clears them, on every node of a cluster). When a
version's secret values differ from those this node resolved for it before, its
function's environments are retired first (``retire``): no environment started with
the old value takes another call, and snapshot templates are made again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable

from triggerfish.control.aliases import Routing
from triggerfish.control.secrets import secret_environment
from triggerfish.functions.brokers import Destinations
from triggerfish.functions.deployer import Deployer
from triggerfish.runtime.base import FunctionSpec
from triggerfish.security.access_keys import AccessKeys, function_credentials
from triggerfish.security.secrets import SecretStore
from triggerfish.store.records import LIVE, VersionRecord
from triggerfish.store.sql import SqlStore


class Specs:
    def __init__(
        self,
        store: SqlStore,
        deployer: Deployer,
        *,
        access_keys: AccessKeys,
        endpoint: str,
        region: str,
        secrets: SecretStore | None = None,
        retire: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self._store = store
        self._deployer = deployer
        self._access_keys = access_keys
        self._secrets = secrets
        self._retire = retire
        self._secret_marks: dict[tuple[str, str], int] = {}  # by function, version
        self._endpoint = endpoint
        self._region = region
        self._routes: dict[tuple[str, str], Routing[FunctionSpec]] = {}
        self._destinations: dict[tuple[str, str], Destinations] = {}  # by function, version
        self._cleared = 0  # how many times ``clear`` ran

    async def resolve(self, function: str, qualifier: str = LIVE) -> FunctionSpec:
        """The spec of the version ``qualifier`` names now, picked for one invocation
        when it names a weighted alias; NotFoundError when there is none."""
        route = self._routes.get((function, qualifier))
        if route is None:
            route = await self.route(function, qualifier)
        return route.pick()

    async def route(self, function: str, qualifier: str = LIVE) -> Routing[FunctionSpec]:
        """The specs ``qualifier`` routes to now: one, or two with the weight of the
        second; NotFoundError when there is none."""
        key = (function, qualifier)
        route = self._routes.get(key)
        if route is None:
            cleared = self._cleared
            main, extra, weight = await self._store.resolve_routing(function, qualifier)
            route = Routing(
                await self._prepare(main, qualifier),
                None if extra is None else await self._prepare(extra, qualifier),
                weight,
            )
            # A change that cleared the specs while this one was read may have made it
            # stale: it serves this call, and the next one reads the store again.
            if cleared == self._cleared:
                self._routes[key] = route
        return route

    async def _prepare(self, version: VersionRecord, qualifier: str) -> FunctionSpec:
        spec = await self._deployer.prepare(version, qualifier=qualifier)
        self._destinations[(version.function, version.version)] = version.settings.destinations
        spec = await self._with_secrets(spec, version)
        spec = await self._with_aws_environment(spec)
        logs = version.settings.logging.environment()
        if logs:
            spec = dataclasses.replace(spec, environment={**spec.environment, **logs})
        return spec

    def destinations_of(self, spec: FunctionSpec) -> Destinations | None:
        """The destinations of the function version ``spec`` runs (known once resolved)."""
        return self._destinations.get((spec.function, spec.version))

    def clear(self) -> None:
        """Forget every resolved spec: the next ``resolve`` reads the store again, and
        one being read now is not kept."""
        self._cleared += 1
        self._routes.clear()

    async def _with_secrets(self, spec: FunctionSpec, version: VersionRecord) -> FunctionSpec:
        """The values of the secrets the version refers to, in its environment;
        NotFoundError naming the variable and the secret when one is gone."""
        values = await secret_environment(
            self._secrets, spec.function, version.settings.environment
        )
        if not values:
            return spec
        # Only a mark of the values is kept (a hash, in memory), never the values.
        key, mark = (spec.function, spec.version), hash(tuple(sorted(values.items())))
        seen = self._secret_marks.get(key)
        self._secret_marks[key] = mark
        if seen is not None and seen != mark and self._retire is not None:
            await self._retire(spec.function)
        return dataclasses.replace(spec, environment={**spec.environment, **values})

    async def _with_aws_environment(self, spec: FunctionSpec) -> FunctionSpec:
        """Functions reach the built-in S3 API with their own access key, as Lambda code
        reaches AWS: endpoint and credentials in the environment (theirs win)."""
        key_id, secret = await function_credentials(self._access_keys, spec.function)
        aws = {
            "AWS_ENDPOINT_URL": self._endpoint,
            "AWS_ACCESS_KEY_ID": key_id,
            "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_REGION": self._region,
            "AWS_DEFAULT_REGION": self._region,
        }
        environment = {**aws, **spec.environment}
        return dataclasses.replace(spec, environment=environment, region=self._region)
