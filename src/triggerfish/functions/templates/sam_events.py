"""One ``AWS::Serverless::Function`` of a SAM template, with ``Globals`` and its
``Events``, as the settings of a Triggerfish function (see ``sam``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from triggerfish.errors import ConfigError
from triggerfish.events.eventbridge import DEFAULT_BUS
from triggerfish.functions.templates.common import Unsupported, map_runtime
from triggerfish.functions.templates.sam_cors import api_cors

if TYPE_CHECKING:
    from triggerfish.functions.templates.sam import SamTemplate

_HARMLESS = {"Description", "Tags", "FunctionName", "PackageType", "Architectures"}
_CALLERS = {"Policies", "Role", "Environment", "Connectors"}


def merged_properties(template: SamTemplate, resource: dict[str, Any]) -> dict[str, Any]:
    """The function's properties over ``Globals.Function`` (variables are merged)."""
    globals_ = ((template.document.get("Globals") or {}).get("Function")) or {}
    props = dict(resource.get("Properties") or {})
    out = {**globals_, **props}
    if "Environment" in globals_ and "Environment" in props:
        variables = {
            **(globals_["Environment"].get("Variables") or {}),
            **(props["Environment"].get("Variables") or {}),
        }
        out["Environment"] = {"Variables": variables}
    return out


def _refs(value: Any) -> set[str]:
    """The logical ids ``value`` refers to (``!Ref``, ``!GetAtt``, ``${...}``)."""
    import re

    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= _refs(item)
    elif isinstance(value, dict):
        for key, arg in value.items():
            if key == "Ref" and isinstance(arg, str):
                found.add(arg)
            elif key == "Fn::GetAtt":
                found.add(str(arg[0] if isinstance(arg, list) else arg).split(".")[0])
            elif key == "Fn::Sub":
                text = arg[0] if isinstance(arg, list) else arg
                found |= {m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", str(text))}
            found |= _refs(arg)
    return found


def function_config(
    template: SamTemplate, logical_id: str, resource: dict[str, Any]
) -> dict[str, Any]:
    props = merged_properties(template, resource)
    base = f"Resources.{logical_id}.Properties"
    name = template.function_name(logical_id)
    for key in _CALLERS:
        template.called |= _refs(props.get(key)) & set(template.resources)

    handler = props.get("Handler")
    if not isinstance(handler, str):
        raise ConfigError(f"{template.file}: {base}.Handler: missing; expected module.function")
    code = props.get("CodeUri", ".")
    if not isinstance(code, str):
        template.unsupported.append(
            Unsupported(f"{base}.CodeUri", "CodeUri", "code in S3 is not fetched; use a folder")
        )
        code = "."
    # "src/handlers/items.handler": the module's folder joins the code folder.
    module, _, function = handler.rpartition(".")
    if "/" in module:
        folder, _, module = module.rpartition("/")
        code = str(Path(code) / folder)
    config: dict[str, Any] = {"handler": f"{module}.{function}", "code": code}

    runtime = props.get("Runtime")
    if isinstance(runtime, str):
        try:
            config["runtime"], note = map_runtime(runtime)
        except ValueError as exc:
            raise ConfigError(f"{template.file}: {base}.Runtime: {exc}") from None
        if note:
            template.notes.append(f"{name}: {note}")
    if "MemorySize" in props:
        config["memory"] = int(template.resolve(props["MemorySize"], f"{base}.MemorySize"))
    if "Timeout" in props:
        config["timeout"] = float(template.resolve(props["Timeout"], f"{base}.Timeout"))
    variables = (props.get("Environment") or {}).get("Variables") or {}
    environment = template.resolve(variables, f"{base}.Environment")
    config["environment"] = {k: "" if v is None else str(v) for k, v in environment.items()}
    if "Layers" in props:
        config["layers"] = _layers(template, props["Layers"], f"{base}.Layers")
    if "ReservedConcurrentExecutions" in props:
        limit = int(template.resolve(props["ReservedConcurrentExecutions"], base))
        if limit >= 1:
            config["max_concurrency"] = limit
        else:
            template.unsupported.append(
                Unsupported(
                    f"{base}.ReservedConcurrentExecutions",
                    "ReservedConcurrentExecutions: 0",
                    "a function that never runs is not deployable; remove the function",
                )
            )
    if (alias := props.get("AutoPublishAlias")) is not None:
        template.notes.append(
            f"{name}: AutoPublishAlias {alias}: every deploy publishes a version and moves"
            " the alias live to it; triggers invoke live"
        )
    if "DeadLetterQueue" in props:
        dlq = props["DeadLetterQueue"]
        target = _queue_target(template, dlq.get("TargetArn"), f"{base}.DeadLetterQueue")
        if dlq.get("Type") == "SQS" and target:
            config["dead_letter"] = target
        else:
            template.unsupported.append(
                Unsupported(
                    f"{base}.DeadLetterQueue", f"{dlq.get('Type')} dead-letter queue",
                    "only an SQS queue of the template is carried out (as a topic)",
                )
            )  # fmt: skip
    if "EventInvokeConfig" in props:
        _invoke_config(template, props["EventInvokeConfig"], config, f"{base}.EventInvokeConfig")
    for key in sorted(set(props) - _HARMLESS - _CARRIED):
        reason = (
            "IAM is not enforced by Triggerfish (its own permissions: docs/credentials.md)"
            if key in ("Policies", "Role")
            else "not carried out by Triggerfish"
        )
        template.unsupported.append(Unsupported(f"{base}.{key}", key, reason))
    triggers = []
    for event_name, event in (props.get("Events") or {}).items():
        trigger = event_trigger(template, name, event_name, event, f"{base}.Events.{event_name}")
        if trigger is not None:
            triggers.append(trigger)
    config["triggers"] = triggers
    return config


_CARRIED = {
    "Handler", "Runtime", "CodeUri", "MemorySize", "Timeout", "Environment", "Layers",
    "AutoPublishAlias", "ReservedConcurrentExecutions", "DeadLetterQueue",
    "EventInvokeConfig", "Events",
}  # fmt: skip


def _layers(template: SamTemplate, layers: Any, where: str) -> list[str]:
    out = []
    for index, layer in enumerate(layers or []):
        logical = layer.get("Ref") if isinstance(layer, dict) else None
        resource = template.resources.get(str(logical)) if logical else None
        content = ((resource or {}).get("Properties") or {}).get("ContentUri")
        if resource and resource.get("Type") == "AWS::Serverless::LayerVersion" and content:
            folder = str(content).rstrip("/") or "."
            # A bare name would be read as a folder of layers/: keep it beside the template.
            out.append(folder if folder.startswith((".", "/")) else f"./{folder}")
        else:
            shown = template.resolve(layer, where)
            template.unsupported.append(
                Unsupported(
                    f"{where}[{index}]", str(shown),
                    "a published layer cannot be fetched; declare it in the template"
                    " (AWS::Serverless::LayerVersion with ContentUri)",
                )
            )  # fmt: skip
    return out


def _queue_target(template: SamTemplate, arn: Any, where: str) -> str | None:
    """The topic of an SQS queue of the template that ``arn`` names, else None."""
    ids = _refs(arn) & set(template.resources)
    for logical_id in ids:
        if template.resources[logical_id].get("Type") == "AWS::SQS::Queue":
            return template.queue_topic(logical_id)
    return None


def _invoke_config(
    template: SamTemplate, spec: dict[str, Any], config: dict[str, Any], where: str
) -> None:
    retry: dict[str, Any] = {}
    if "MaximumRetryAttempts" in spec:
        retry["max_attempts"] = int(spec["MaximumRetryAttempts"]) + 1
    if "MaximumEventAgeInSeconds" in spec:
        retry["max_age"] = int(spec["MaximumEventAgeInSeconds"])
    if retry:
        config["async_retry"] = retry
    destinations: dict[str, str] = {}
    for key, field in (("OnSuccess", "on_success"), ("OnFailure", "on_failure")):
        target = (spec.get("DestinationConfig") or {}).get(key)
        if not target:
            continue
        kind = target.get("Type")
        topic = _queue_target(template, target.get("Destination"), where)
        if kind == "SQS" and topic:
            destinations[field] = topic
        elif kind == "EventBridge":
            destinations[field] = DEFAULT_BUS
        else:
            template.unsupported.append(
                Unsupported(
                    f"{where}.DestinationConfig.{key}", f"{kind} destination",
                    "only SQS queues of the template (as topics) and EventBridge (the"
                    " default topic) are carried out",
                )
            )  # fmt: skip
    if destinations:
        config["destinations"] = destinations


_EVENT_KINDS = {
    "S3", "Api", "HttpApi", "Schedule", "ScheduleV2", "SQS", "EventBridgeRule", "CloudWatchEvent"
}  # fmt: skip


def event_trigger(
    template: SamTemplate, function: str, name: str, event: dict[str, Any], where: str
) -> dict[str, Any] | None:
    kind = event.get("Type")
    if kind not in _EVENT_KINDS:
        template.unsupported.append(
            Unsupported(where, f"{kind} event", f"{kind} events are not a source of Triggerfish")
        )
        return None
    props = template.resolve(event.get("Properties") or {}, where)
    trigger_name = name.lower().replace(" ", "-")[:64]
    raw = event.get("Properties") or {}
    if kind == "S3":
        return _s3(template, raw, props, trigger_name, where)
    if kind in ("Api", "HttpApi"):
        return _http(template, kind, props, trigger_name, where)
    if kind in ("Schedule", "ScheduleV2"):
        return _schedule(template, kind, props, trigger_name, where)
    if kind == "SQS":
        return _sqs(template, raw, props, trigger_name, where)
    return _rule(template, props, trigger_name, where)  # EventBridgeRule, CloudWatchEvent


def _s3(
    template: SamTemplate, raw: dict[str, Any], props: dict[str, Any], name: str, where: str
) -> dict[str, Any] | None:
    ids = _refs(raw.get("Bucket")) & set(template.resources)
    if not ids:
        raise ConfigError(f"{template.file}: {where}.Bucket: expected !Ref of a bucket")
    events = props.get("Events") or "s3:ObjectCreated:*"
    bucket: dict[str, Any] = {
        "name": template.bucket_name(next(iter(ids))),
        "events": [events] if isinstance(events, str) else list(events),
    }
    for rule in ((props.get("Filter") or {}).get("S3Key") or {}).get("Rules") or []:
        key = str(rule.get("Name", "")).lower()
        if key in ("prefix", "suffix"):
            bucket[key] = str(rule.get("Value", ""))
    return {"name": name, "bucket": bucket, "event_format": "aws"}


def _http(
    template: SamTemplate, kind: str, props: dict[str, Any], name: str, where: str
) -> dict[str, Any]:
    path = props.get("Path")
    method = str(props.get("Method") or "ANY").upper()
    method = "ANY" if method in ("ANY", "X-AMAZON-APIGATEWAY-ANY-METHOD", "*") else method
    route = "$default" if path in (None, "$default") else f"{method} {path}"
    for key in sorted(set(props) - {"Path", "Method", "RestApiId", "ApiId", "TimeoutInMillis"}):
        template.unsupported.append(
            Unsupported(f"{where}.Properties.{key}", f"{kind} {key}", "not carried out")
        )
    payload = "v1" if kind == "Api" else "v2"
    if kind == "HttpApi" and str(props.get("PayloadFormatVersion", "2.0")) == "1.0":
        payload = "v1"
    http: dict[str, Any] = {"route": route, "payload": payload}
    cors = api_cors(template, kind, props.get("RestApiId" if kind == "Api" else "ApiId"))
    if cors is not None:
        http["cors"] = cors
    return {"name": name, "http": http}


def _schedule(
    template: SamTemplate, kind: str, props: dict[str, Any], name: str, where: str
) -> dict[str, Any] | None:
    key = "Schedule" if kind == "Schedule" else "ScheduleExpression"
    if props.get("Enabled") is False or props.get("State") == "DISABLED":
        template.notes.append(f"{where}: disabled in the template; not scheduled")
        return None
    schedule: dict[str, Any] = {"expression": str(props[key])}
    if props.get("ScheduleExpressionTimezone"):
        schedule["timezone"] = str(props["ScheduleExpressionTimezone"])
    for extra in sorted(set(props) & {"Input", "InputPath", "InputTransformer"}):
        template.unsupported.append(
            Unsupported(
                f"{where}.Properties.{extra}", extra,
                "the function gets EventBridge's Scheduled Event, not a custom input",
            )
        )  # fmt: skip
    return {"name": name, "schedule": schedule, "event_format": "aws"}


def _sqs(
    template: SamTemplate, raw: dict[str, Any], props: dict[str, Any], name: str, where: str
) -> dict[str, Any]:
    topic = _queue_target(template, raw.get("Queue"), where)
    if topic is None:
        raise ConfigError(
            f"{template.file}: {where}.Queue: expected !GetAtt of an AWS::SQS::Queue of the"
            " template (a queue outside it is not reachable)"
        )
    size = int(props.get("BatchSize", 10))
    window = int(props.get("MaximumBatchingWindowInSeconds", 0))
    batch: dict[str, Any] = {"size": size}
    if window and size > 1:
        batch["window"] = window
    trigger: dict[str, Any] = {"name": name, "topic": topic, "event_format": "sqs", "batch": batch}
    if props.get("Enabled") is False:
        template.notes.append(f"{where}: disabled in the template; deployed enabled")
    return trigger


def _rule(template: SamTemplate, props: dict[str, Any], name: str, where: str) -> dict[str, Any]:
    bus = props.get("EventBusName") or DEFAULT_BUS
    bus = str(bus).rsplit("/", 1)[-1]
    template.buses.add(bus)
    trigger: dict[str, Any] = {"name": name, "topic": bus, "event_format": "eventbridge"}
    if pattern := props.get("Pattern"):
        # As written for AWS: an eventbridge trigger matches the envelope it delivers.
        trigger["pattern"] = pattern
    return trigger
