"""``triggerfish export NAME --format sam``: a deployed function written back as an AWS
SAM template, so a team can move to AWS as easily as from it.

The template is built from what the server keeps: the settings of the version the
``live`` alias points at, and the triggers as they were declared. Each trigger becomes
the SAM event that ``triggerfish deploy template.yaml`` reads back into the same
trigger (a bucket becomes an ``AWS::S3::Bucket``, a topic an ``AWS::SQS::Queue``), so
export and deploy make a round trip. What SAM cannot say (a watched folder, a broker
source, a secret reference) is written as a comment-free ``Metadata`` entry naming it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from triggerfish.cli.client import Client, CliError
from triggerfish.cli.options import DataDirOpt
from triggerfish.cli.output import console
from triggerfish.config import load_settings
from triggerfish.functions.templates.common import local_version


def export(
    name: Annotated[str, typer.Argument(help="the deployed function")],
    format_: Annotated[
        str, typer.Option("--format", help="the template's format: sam (AWS SAM)")
    ] = "sam",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="the file to write (default: stdout)")
    ] = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Write a deployed function as an AWS SAM template (docs/migrate.md)."""
    if format_ != "sam":
        raise CliError(f"--format {format_!r}: the formats are: sam", 2)
    with Client(load_settings({"data_dir": data_dir})) as api:
        described = api.json("GET", f"/v1/functions/{name}")
    text = yaml.safe_dump(sam_template(described), sort_keys=False, width=100)
    if out is None:
        console.print(text, markup=False, highlight=False, end="", soft_wrap=True)
    else:
        out.write_text(text)
        console.print(f"wrote {out}", markup=False)


def logical_id(name: str, suffix: str = "") -> str:
    """``resize-photos`` -> ``ResizePhotos`` (a CloudFormation logical id)."""
    return (
        "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", name)) + suffix
    )


def sam_template(described: dict[str, Any]) -> dict[str, Any]:
    """The SAM template of a function as ``GET /v1/functions/NAME`` describes it."""
    name = described["name"]
    live = described.get("aliases", {}).get("live")
    versions = described.get("versions") or []
    version = next(
        (v for v in versions if v["version"] == live), versions[-1] if versions else None
    )
    if version is None:
        raise CliError(f"{name} has no version to export", 1)
    config: dict[str, Any] = version["config"]
    resources: dict[str, Any] = {}
    unsaid: list[str] = []
    props: dict[str, Any] = {
        "FunctionName": name,
        "CodeUri": f"{name}/",
        "Handler": config["handler"],
        "Runtime": _runtime(str(config.get("runtime", "python"))),
        "MemorySize": config.get("memory", 128),
        "Timeout": max(1, round(float(config.get("timeout", 10)))),
    }
    environment = {}
    for key, value in (config.get("environment") or {}).items():
        if isinstance(value, str):
            environment[key] = value
        else:
            unsaid.append(f"environment {key}: a Triggerfish secret; set it in AWS")
    if environment:
        props["Environment"] = {"Variables": environment}
    if config.get("max_concurrency") not in (None, 10):
        props["ReservedConcurrentExecutions"] = config["max_concurrency"]
    if config.get("layers"):
        unsaid.append("layers: folders beside the manifest; publish them as layers")
    retry = config.get("async_retry") or {}
    invoke: dict[str, Any] = {}
    if retry:
        invoke["MaximumRetryAttempts"] = min(2, max(0, int(retry.get("max_attempts", 3)) - 1))
        invoke["MaximumEventAgeInSeconds"] = int(retry.get("max_age", 21600))
    destinations = {}
    for key, field in (("OnSuccess", "on_success"), ("OnFailure", "on_failure")):
        topic = (config.get("destinations") or {}).get(field)
        if topic and ":" not in topic:
            destinations[key] = {"Type": "SQS", "Destination": _queue(resources, topic)}
    if destinations:
        invoke["DestinationConfig"] = destinations
    if invoke:
        props["EventInvokeConfig"] = invoke
    if config.get("dead_letter"):
        props["DeadLetterQueue"] = {
            "Type": "SQS",
            "TargetArn": _queue(resources, config["dead_letter"]),
        }
    events: dict[str, Any] = {}
    for trigger in described.get("trigger_configs") or []:
        event = _event(trigger, resources)
        label = logical_id(str(trigger.get("name") or trigger.get("topic") or "event"))
        if event is None:
            unsaid.append(f"trigger {label}: no SAM event says it")
        else:
            events[label] = event
        if (trigger.get("http") or {}).get("cors"):
            # SAM keeps CORS on the API resource, shared by its routes, not on an event.
            unsaid.append(
                f"trigger {label}: its route's cors; give the API resource Cors "
                "(or CorsConfiguration for an HttpApi)"
            )
    if events:
        props["Events"] = events
    resources[logical_id(name, "Function")] = {
        "Type": "AWS::Serverless::Function",
        "Properties": props,
    }
    template: dict[str, Any] = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Transform": "AWS::Serverless-2016-10-31",
        "Description": f"{name}, exported from Triggerfish",
        "Resources": dict(sorted(resources.items(), key=lambda kv: kv[1]["Type"])),
    }
    if unsaid:
        template["Metadata"] = {"Triggerfish": {"NotExported": unsaid}}
    return template


def _runtime(runtime: str) -> str:
    if runtime == "python":
        return f"python{local_version('python')}"
    if runtime == "nodejs":
        node = local_version("nodejs")
        return f"nodejs{node.split('.')[0]}.x" if node else "nodejs20.x"
    return runtime


def _queue(resources: dict[str, Any], topic: str) -> dict[str, Any]:
    key = logical_id(topic, "Queue")
    resources[key] = {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": topic}}
    return {"Fn::GetAtt": [key, "Arn"]}


def _event(trigger: dict[str, Any], resources: dict[str, Any]) -> dict[str, Any] | None:
    if bucket := trigger.get("bucket"):
        key = logical_id(bucket["name"], "Bucket")
        resources[key] = {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": bucket["name"]}}
        props: dict[str, Any] = {"Bucket": {"Ref": key}, "Events": bucket.get("events")}
        rules = [
            {"Name": part, "Value": bucket[part]}
            for part in ("prefix", "suffix")
            if bucket.get(part)
        ]
        if rules:
            props["Filter"] = {"S3Key": {"Rules": rules}}
        return {"Type": "S3", "Properties": props}
    if http := trigger.get("http"):
        method, _, path = str(http["route"]).partition(" ")
        kind = "Api" if http.get("payload") == "v1" else "HttpApi"
        if http["route"] == "$default":
            return {"Type": "HttpApi"}
        return {"Type": kind, "Properties": {"Path": path, "Method": method.lower()}}
    if schedule := trigger.get("schedule"):
        props = {"ScheduleExpression": schedule["expression"]}
        if schedule.get("timezone", "UTC") != "UTC":
            props["ScheduleExpressionTimezone"] = schedule["timezone"]
        return {"Type": "ScheduleV2", "Properties": props}
    topic = trigger.get("topic")
    if topic and trigger.get("event_format") == "eventbridge":
        props = {"Pattern": trigger["pattern"]} if trigger.get("pattern") else {}
        if topic != "default":
            props["EventBusName"] = topic
        return {"Type": "EventBridgeRule", "Properties": props}
    if topic:
        batch = trigger.get("batch") or {"size": trigger.get("batch_size", 1)}
        props = {"Queue": _queue(resources, topic), "BatchSize": batch["size"]}
        if batch.get("window"):
            props["MaximumBatchingWindowInSeconds"] = batch["window"]
        return {
            "Type": "SQS",
            "Properties": {**props, "FunctionResponseTypes": ["ReportBatchItemFailures"]},
        }
    return None
