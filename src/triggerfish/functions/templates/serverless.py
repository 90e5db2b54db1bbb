"""Serverless Framework services (``serverless.yml``) read as a Triggerfish ``Manifest``.

``read_serverless`` resolves the file's variables (``serverless_variables``), then
translates what Triggerfish carries out (docs/migrate.md has the table): ``provider``
(runtime, memorySize, timeout, environment, stage, region, IAM statements), each
function (handler, runtime, memorySize, timeout, environment, reservedConcurrency,
provisionedConcurrency, onError) and its events ``s3``, ``http`` (the REST API's v1
payload), ``httpApi`` (payload 2.0), ``schedule``, ``sqs``, ``eventBridge`` and
``cloudwatchEvent``, with the ``cors`` of ``http`` events and ``provider.httpApi``
(``serverless_cors``); and ``resources`` (``serverless_resources``).

Functions get the names AWS gives them, ``<service>-<stage>-<function>`` in lower case
(or their ``name``), so code that names another function of its service finds it. Their
code is the service's folder, as Serverless packages it. Defaults are Serverless's:
1024 MB, 6 seconds, nodejs14.x.

Whatever is not carried out (another event, property, plugin or resource) is reported
as ``Unsupported`` with its reason, never dropped.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from triggerfish.errors import ConfigError
from triggerfish.functions.manifest import check_manifest, manifest_from_document
from triggerfish.functions.templates.common import (
    SERVER_URL,
    Output,
    TemplateResult,
    Unsupported,
    load_yaml,
    map_runtime,
)
from triggerfish.functions.templates.serverless_cors import http_api_cors, http_event_cors
from triggerfish.functions.templates.serverless_resources import (
    Resources,
    arn_name,
    kebab,
    permissions,
)
from triggerfish.functions.templates.serverless_variables import Variables

DEFAULT_RUNTIME = "nodejs14.x"  # Serverless Framework v3's
DEFAULT_MEMORY = 1024
DEFAULT_TIMEOUT = 6
DEFAULT_SQS_BATCH = 10
# fmt: off
_QUIET_TOP = frozenset({"service", "frameworkVersion", "provider", "functions", "resources",
    "custom", "plugins", "package", "params", "variablesResolutionMode", "configValidationMode",
    "useDotenv", "org", "app", "disabledDeprecations", "deprecationNotificationMode", "console",
    "dashboard"})
_QUIET_PROVIDER = frozenset({"name", "runtime", "memorySize", "timeout", "environment", "stage",
    "region", "iam", "iamRoleStatements", "profile", "stackName", "deploymentBucket",
    "versionFunctions", "lambdaHashingVersion", "tags", "stackTags", "architecture",
    "deploymentMethod", "eventBridge", "httpApi"})
_QUIET_FUNCTION = frozenset({"handler", "runtime", "memorySize", "timeout", "environment",
    "events", "name", "description", "tags", "package", "reservedConcurrency",
    "provisionedConcurrency", "onError", "iamRoleStatements", "architecture"})
# fmt: on
_PLUGINS = {
    "serverless-python-requirements": "not needed: Triggerfish's build installs each"
    " function's requirements.txt (or pyproject.toml) itself",
    "serverless-offline": "not needed: triggerfish up serves the routes, schedules, queues"
    " and EventBridge buses on this machine",
    "serverless-dotenv-plugin": "not run: set the variables in the environment of triggerfish"
    " deploy (${env:NAME}) or in environment:",
}
_EVENT_REASONS = {
    "sns": "Triggerfish has no SNS; publish to a queue of the service (an sqs event) or an"
    " EventBridge bus (an eventBridge event) instead",
    "stream": "DynamoDB and Kinesis streams are not provided by Triggerfish",
    "websocket": "WebSocket APIs are not provided by Triggerfish",
    "alb": "there is no load balancer: use an http or httpApi event",
}
_S3_EVENT_RE = re.compile(r"^(s3:)?(ObjectCreated|ObjectRemoved):[A-Za-z*]+$")


def read_serverless(file: Path, parameters: dict[str, str]) -> TemplateResult:
    """Translate the service ``file``; ``parameters`` are the command line's options
    (``stage``, ``region``, and ``${opt:...}`` / ``${param:...}`` values)."""
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read the service: {exc}") from exc
    return Service(parse_serverless(text, file), file, parameters, os.environ).translate()


def parse_serverless(text: str, file: Path) -> dict[str, Any]:
    document = load_yaml(text, file)
    if not isinstance(document, dict) or "service" not in document:
        raise ConfigError(
            f"{file}: expected a Serverless Framework service: a mapping with"
            " 'service', 'provider' and 'functions'"
        )
    return document


class Service:
    def __init__(
        self, document: dict[str, Any], file: Path, options: dict[str, str], env: Any
    ) -> None:
        self.file = file
        self.variables = Variables(document, file.parent, options, env)
        self.doc: dict[str, Any] = {
            key: self.variables.resolve(value, key) for key, value in document.items()
        }
        self.notes: list[str] = []
        self.unsupported: list[Unsupported] = []
        self.outputs: list[Output] = []
        self.topics: dict[str, dict[str, Any]] = {}
        self.http_api_cors: dict[str, Any] | None = None
        service = self.doc["service"]
        service = service.get("name") if isinstance(service, dict) else service
        if not isinstance(service, str) or not service:
            raise ConfigError(f"{file}: service: expected the service's name")
        self.service = service
        self.stage = self.variables.stage
        self.provider = self._mapping("provider")
        if self.provider.get("name", "aws") != "aws":
            raise ConfigError(
                f"{file}: provider.name: {self.provider['name']!r}; Triggerfish deploys"
                " services written for AWS (provider.name: aws)"
            )
        self.functions = self._mapping("functions")
        self.names = {key: self._function_name(key, fn) for key, fn in self.functions.items()}
        self.cloudformation = self._cloudformation()
        self.resources = Resources(
            self.cloudformation.get("Resources") or {},
            stack=f"{service}-{self.stage}",
            region=self.variables.region,
            function_names={_logical_id(key): name for key, name in self.names.items()},
        )

    def _mapping(self, key: str) -> dict[str, Any]:
        value = self.doc.get(key) or {}
        if not isinstance(value, dict):
            raise ConfigError(f"{self.file}: {key}: expected a mapping")
        return value

    def _cloudformation(self) -> dict[str, Any]:
        """``resources``, whose parts (a list of them too) are merged."""
        parts = self.doc.get("resources") or {}
        merged: dict[str, Any] = {}
        for part in parts if isinstance(parts, list) else [parts]:
            for section, value in (part or {}).items():
                if isinstance(value, dict):
                    merged[section] = {**merged.get(section, {}), **value}
                else:
                    merged[section] = value
        for section in sorted(set(merged) - {"Resources", "Outputs"}):
            self._unsupported(f"resources.{section}", section, "not carried out by Triggerfish")
        return merged

    def _function_name(self, key: str, fn: Any) -> str:
        given = fn.get("name") if isinstance(fn, dict) else None
        name = kebab(str(given) if given else f"{self.service}-{self.stage}-{key}")
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", name):
            raise ConfigError(
                f"{self.file}: functions.{key}: its name {name!r} is not a Triggerfish name"
                " (1 to 64 lower-case letters, digits, '-' or '_'); give it a shorter name:"
            )
        return name

    def _unsupported(self, where: str, what: str, reason: str, called: bool = False) -> None:
        self.unsupported.append(Unsupported(where, what, reason, called))

    # -- the whole service ------------------------------------------------------------

    def translate(self) -> TemplateResult:
        self._extra_keys(self.doc, _QUIET_TOP, "", "setting")
        self._extra_keys(self.provider, _QUIET_PROVIDER, "provider.", "provider setting")
        self._plugins()
        self._package()
        http_api = self.provider.get("httpApi") or {}
        self.http_api_cors = http_api_cors(
            http_api.get("cors") if isinstance(http_api, dict) else None,
            self.file, "provider.httpApi.cors", self._unsupported,
        )  # fmt: skip
        for setting in sorted(set(http_api) - {"cors"} if isinstance(http_api, dict) else ()):
            self._unsupported(
                f"provider.httpApi.{setting}",
                "HTTP API settings",
                "not carried out: the routes are served by triggerfish up as they are",
            )
        functions: dict[str, Any] = {}
        provider_grants = self._statements("provider")
        for key, fn in self.functions.items():
            config = self._function(key, fn if isinstance(fn, dict) else {}, provider_grants)
            if config is not None:
                functions[self.names[key]] = config
        self.topics = {**self.resources.topics(), **self.topics}
        unsupported, notes = self.resources.report()
        self.unsupported += unsupported
        self.notes += notes
        self._outputs()
        for where, variable in self.variables.unreadable:
            self._unsupported(
                where,
                "variable",
                f"{variable}: Triggerfish cannot read this source; its fallback was used",
            )
        document = {"functions": functions, "topics": self.topics}
        manifest = check_manifest(
            manifest_from_document(document, self.file), origin=str(self.file)
        )
        return TemplateResult(manifest, self.notes, self.unsupported, self.outputs)

    def _extra_keys(
        self, section: dict[str, Any], known: frozenset[str], prefix: str, what: str
    ) -> None:
        for key in section:
            if key not in known:
                self._unsupported(f"{prefix}{key}", what, "not carried out by Triggerfish")

    def _plugins(self) -> None:
        plugins = self.doc.get("plugins") or []
        if isinstance(plugins, dict):
            plugins = plugins.get("modules") or []
        for index, plugin in enumerate(plugins):
            name = str(plugin)
            reason = _PLUGINS.get(name)
            if reason is None and name.startswith("serverless-offline"):
                reason = _PLUGINS["serverless-offline"]
            self._unsupported(
                f"plugins[{index}]",
                name,
                reason
                or "plugins do not run on Triggerfish: what it adds to the service is not deployed",
            )

    def _package(self) -> None:
        package = self.doc.get("package") or {}
        for key in package if isinstance(package, dict) else ():
            self._unsupported(
                f"package.{key}",
                "package setting",
                "each function's code is the service's folder (without caches, .git and"
                " node_modules: dependencies are installed by Triggerfish's build)",
            )

    def _statements(self, where: str, fn: dict[str, Any] | None = None) -> dict[str, Any]:
        """The permissions the IAM statements of the provider (or of ``fn``) grant."""
        if fn is not None:
            statements, at = fn.get("iamRoleStatements") or [], f"{where}.iamRoleStatements"
        else:
            iam = self.provider.get("iam") or {}
            role = iam.get("role") if isinstance(iam, dict) else None
            if isinstance(role, dict) and "statements" in role:
                statements, at = role["statements"] or [], "provider.iam.role.statements"
            else:
                statements, at = (
                    self.provider.get("iamRoleStatements") or [],
                    f"{where}.iamRoleStatements",
                )
            if isinstance(role, str):
                self._unsupported(
                    "provider.iam.role",
                    "IAM role",
                    "an existing role is not"
                    " carried out: write its statements under iam.role.statements",
                )
        granted, unsupported = permissions(self.resources.resolve(statements, at), at)
        self.unsupported += unsupported
        return granted

    # -- one function -------------------------------------------------------------------

    def _function(
        self, key: str, fn: dict[str, Any], provider_grants: dict[str, Any]
    ) -> dict[str, Any] | None:
        where = f"functions.{key}"
        if "image" in fn or "handler" not in fn:
            self._unsupported(
                where,
                "function",
                "a function from a container image is not run"
                " by Triggerfish; give it a handler and a runtime",
            )
            return None
        self._extra_keys(fn, _QUIET_FUNCTION, f"{where}.", "function setting")
        name = self.names[key]
        aws_runtime = str(fn.get("runtime") or self.provider.get("runtime") or DEFAULT_RUNTIME)
        try:
            runtime, note = map_runtime(aws_runtime)
        except ValueError as exc:
            raise ConfigError(f"{self.file}: {where}.runtime: {exc}") from None
        if note:
            self.notes.append(f"{name}: {note}")
        environment = {
            str(k): _text(v)
            for k, v in self.resources.resolve(
                {**(self.provider.get("environment") or {}), **(fn.get("environment") or {})},
                f"{where}.environment",
            ).items()
            if v is not None
        }
        grants = _merge(provider_grants, self._statements(where, fn))
        config: dict[str, Any] = {
            "handler": str(fn["handler"]).replace("/", "."),
            "code": ".",
            "runtime": runtime,
            "memory": int(
                fn.get("memorySize") or self.provider.get("memorySize") or DEFAULT_MEMORY
            ),
            "timeout": float(fn.get("timeout") or self.provider.get("timeout") or DEFAULT_TIMEOUT),
            "environment": environment,
            "triggers": self._triggers(key, fn.get("events") or []),
        }
        if grants:
            config["permissions"] = grants
        if fn.get("reservedConcurrency") is not None:
            config["max_concurrency"] = max(1, int(fn["reservedConcurrency"]))
        if fn.get("provisionedConcurrency") is not None:
            config["min_warm"] = int(fn["provisionedConcurrency"])
        if fn.get("onError"):
            target = str(self.resources.resolve(fn["onError"], f"{where}.onError"))
            if ":sns:" in target:
                self._unsupported(f"{where}.onError", "SNS topic", _EVENT_REASONS["sns"])
            else:
                config["dead_letter"] = self._topic(arn_name(target))
        return config

    def _topic(self, name: str) -> str:
        self.topics.setdefault(name, {})
        return name

    def _triggers(self, key: str, events: list[Any]) -> list[dict[str, Any]]:
        triggers: list[dict[str, Any]] = []
        for index, event in enumerate(events):
            where = f"functions.{key}.events[{index}]"
            if not isinstance(event, dict) or len(event) != 1:
                raise ConfigError(f"{self.file}: {where}: expected one event type, such as http:")
            ((kind, spec),) = event.items()
            reader = getattr(self, f"_event_{kind}", None)
            if reader is None:
                reason = _EVENT_REASONS.get(
                    kind, "this event source is not provided by Triggerfish"
                )
                self._unsupported(where, f"{kind} event", reason)
                continue
            made = reader(key, spec, where)
            for number, trigger in enumerate(made):
                suffix = f"-{number}" if len(made) > 1 else ""
                trigger.setdefault("name", f"{kind.lower()}-{index}{suffix}")
                triggers.append(trigger)
        return triggers

    def _event_s3(self, key: str, spec: Any, where: str) -> list[dict[str, Any]]:
        spec = {"bucket": spec} if isinstance(spec, str) else dict(spec or {})
        bucket = self.resources.resolve(spec.pop("bucket", None), f"{where}.bucket")
        if not isinstance(bucket, str):
            raise ConfigError(f"{self.file}: {where}.bucket: expected a bucket name")
        event = str(spec.pop("event", "s3:ObjectCreated:*"))
        if not _S3_EVENT_RE.match(event):
            self._unsupported(
                where,
                f"S3 event {event}",
                "Triggerfish's buckets send ObjectCreated and ObjectRemoved events only",
            )
            return []
        options: dict[str, Any] = {"name": bucket, "events": [event]}
        for rule in spec.pop("rules", None) or []:
            for part in ("prefix", "suffix"):
                if isinstance(rule, dict) and part in rule:
                    options[part] = str(rule[part])
        if spec.pop("existing", False):
            self.notes.append(f"{self.names[key]}: bucket {bucket} is made if it does not exist")
        spec.pop("forceDeploy", None)
        self._leftover(spec, where)
        return [{"bucket": options, "event_format": "aws"}]

    def _event_http(self, key: str, spec: Any, where: str) -> list[dict[str, Any]]:
        if isinstance(spec, str):
            method, _, path = spec.partition(" ")
            spec = {"method": method, "path": path}
        spec = dict(spec or {})
        cors = http_event_cors(
            spec.pop("cors", None), self.file, f"{where}.cors", self._unsupported
        )
        route = self._route(key, spec, where, rest=True)
        http: dict[str, Any] = {"route": route, "payload": "v1"}
        if cors is not None:
            http["cors"] = cors
        return [{"http": http}]

    def _event_httpApi(self, key: str, spec: Any, where: str) -> list[dict[str, Any]]:
        if spec == "*":
            spec = {"method": "*", "path": "*"}
        elif isinstance(spec, str):
            method, _, path = spec.partition(" ")
            spec = {"method": method, "path": path}
        spec = dict(spec or {})
        route = self._route(key, spec, where, rest=False)
        http: dict[str, Any] = {"route": route, "payload": "v2"}
        if self.http_api_cors is not None:
            http["cors"] = dict(self.http_api_cors)
        return [{"http": http}]

    def _route(self, key: str, spec: dict[str, Any], where: str, *, rest: bool) -> str:
        method = str(spec.pop("method", "ANY")).upper()
        path = str(spec.pop("path", "")).strip()
        if method == "*" and path == "*":
            route, shown = "$default", "/"
        else:
            method = "ANY" if method == "*" else method
            path = "/" + path.strip("/")
            route, shown = f"{method} {path}", path
        for option in (
            "cors",
            "private",
            "authorizer",
            "integration",
            "request",
            "response",
            "async",
            "operationId",
            "swaggerTags",
            "summary",
            "description",
        ):
            if option in spec:
                self._unsupported(
                    f"{where}.{option}",
                    "route setting",
                    _ROUTE_REASONS.get(
                        option,
                        "not carried out: the route passes the request to the function"
                        " as API Gateway's proxy integration does",
                    ),
                )
                spec.pop(option)
        self._leftover(spec, where)
        label = "REST API" if rest else "HTTP API"
        self.outputs.append(
            Output(
                f"{self.names[key]} {method} {shown}",
                f"{SERVER_URL}/fn{path if route != '$default' else ''}",
                f"{label} route of {key}",
            )
        )
        return route

    def _event_schedule(self, key: str, spec: Any, where: str) -> list[dict[str, Any]]:
        spec = {"rate": spec} if isinstance(spec, str) else dict(spec or {})
        rates = spec.pop("rate", None)
        rates = rates if isinstance(rates, list) else [rates]
        if spec.pop("enabled", True) is False:
            self.notes.append(
                f"{self.names[key]}: {where} is disabled (enabled: false); no schedule was made"
            )
            return []
        for option in ("input", "inputPath", "inputTransformer"):
            if option in spec:
                spec.pop(option)
                self._unsupported(
                    f"{where}.{option}",
                    "schedule setting",
                    "not carried out: the function gets EventBridge's Scheduled Event",
                )
        spec.pop("name", None)
        spec.pop("description", None)
        self._leftover(spec, where)
        return [{"schedule": str(rate), "event_format": "aws"} for rate in rates if rate]

    def _event_sqs(self, key: str, spec: Any, where: str) -> list[dict[str, Any]]:
        spec = dict(spec) if isinstance(spec, dict) and "arn" in spec else {"arn": spec}
        arn = self.resources.resolve(spec.pop("arn", None), f"{where}.arn")
        if not isinstance(arn, str):
            raise ConfigError(f"{self.file}: {where}.arn: expected the queue's ARN")
        queue = self._topic(arn_name(arn))
        size = int(spec.pop("batchSize", DEFAULT_SQS_BATCH))
        window = int(spec.pop("maximumBatchingWindow", 0))
        trigger: dict[str, Any] = {"topic": queue, "event_format": "sqs"}
        trigger["batch"] = {"size": size, "window": window} if size > 1 else {"size": 1}
        if size == 1 and window:
            self.notes.append(
                f"{self.names[key]}: {where}: a batch of 1 does not wait; its"
                " maximumBatchingWindow is left out"
            )
        spec.pop("functionResponseType", None)  # batchItemFailures are always read
        if spec.pop("enabled", True) is False:
            self.notes.append(f"{self.names[key]}: {where} is disabled; no trigger was made")
            return []
        if "filterPatterns" in spec:
            spec.pop("filterPatterns")
            self._unsupported(
                f"{where}.filterPatterns",
                "SQS filter",
                "not carried out: every message of the queue runs the function",
            )
        redrive = self.resources.redrive(queue)
        if redrive is not None:
            trigger["dead_letter"] = self._topic(redrive[0])
            trigger["retry"] = {"max_attempts": redrive[1]}
        self._leftover(spec, where)
        return [trigger]

    def _event_eventBridge(self, key: str, spec: Any, where: str) -> list[dict[str, Any]]:
        spec = dict(spec or {})
        bus = self.resources.resolve(spec.pop("eventBus", "default"), f"{where}.eventBus")
        triggers: list[dict[str, Any]] = []
        if "schedule" in spec:
            triggers += self._event_schedule(key, spec.pop("schedule"), where)
        if "pattern" in spec:
            trigger: dict[str, Any] = {
                "topic": self._topic(arn_name(str(bus))),
                "event_format": "eventbridge",
                "pattern": spec.pop("pattern"),
            }
            retry = spec.pop("retryPolicy", None) or {}
            if retry:
                trigger["retry"] = {"max_attempts": int(retry.get("maximumRetryAttempts", 185)) + 1}
                if "maximumEventAge" in retry:
                    trigger["retry"]["max_age"] = int(retry["maximumEventAge"])
            if spec.get("deadLetterQueueArn"):
                dlq = self.resources.resolve(spec.pop("deadLetterQueueArn"), where)
                trigger["dead_letter"] = self._topic(arn_name(str(dlq)))
            triggers.append(trigger)
        for option in ("input", "inputPath", "inputTransformer"):
            if option in spec:
                spec.pop(option)
                self._unsupported(
                    f"{where}.{option}",
                    "EventBridge target setting",
                    "not carried out: the function gets the event as it was put",
                )
        spec.pop("name", None)
        spec.pop("description", None)
        self._leftover(spec, where)
        return triggers

    def _event_cloudwatchEvent(self, key: str, spec: Any, where: str) -> list[dict[str, Any]]:
        spec = dict(spec or {})
        return self._event_eventBridge(key, {"pattern": spec.pop("event", {}), **spec}, where)

    def _leftover(self, spec: dict[str, Any], where: str) -> None:
        for option in spec:
            self._unsupported(
                f"{where}.{option}", "event setting", "not carried out by Triggerfish"
            )

    def _outputs(self) -> None:
        outputs = self.cloudformation.get("Outputs") or {}
        for name, output in outputs.items():
            if not isinstance(output, dict):
                continue
            value = self.resources.resolve(output.get("Value"), f"resources.Outputs.{name}.Value")
            self.outputs.append(Output(name, _text(value), str(output.get("Description", ""))))


_ROUTE_REASONS = {
    "cors": "not carried out: an httpApi route takes its CORS from provider.httpApi.cors",
    "private": "not carried out: the route answers without an API key",
    "authorizer": "not carried out: the route answers without an authorizer; anyone who"
    " reaches the server can call it",
}


def _logical_id(key: str) -> str:
    """The logical id Serverless gives a function's resource (``HelloLambdaFunction``)."""
    normalized = key[:1].upper() + key[1:]
    return normalized.replace("-", "Dash").replace("_", "Underscore") + "LambdaFunction"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _merge(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    out = dict(first)
    for key, value in second.items():
        if isinstance(value, dict):
            old = out.get(key) or {}
            out[key] = {k: list(dict.fromkeys([*old.get(k, []), *v])) for k, v in value.items()}
        else:
            out[key] = list(dict.fromkeys([*out.get(key, []), *value]))
    return out
