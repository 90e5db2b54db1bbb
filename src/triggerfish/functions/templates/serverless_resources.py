"""The CloudFormation side of a ``serverless.yml``: its ``resources``, the intrinsic
functions that name them (``Ref``, ``Fn::GetAtt``, ``Fn::Sub``, ``Fn::Join``), and the
IAM statements that become a function's ``permissions``.

``AWS::S3::Bucket`` is a bucket of the object store and ``AWS::SQS::Queue`` a topic
(its ``RedrivePolicy`` becomes the dead-letter topic and attempts of the triggers on
it). Any other resource is reported: Triggerfish does not provide it, and when a
function's environment or IAM statements name it, its code will call it and fail.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from triggerfish.errors import ConfigError
from triggerfish.functions.templates.common import Unsupported
from triggerfish.functions.templates.serverless_variables import ACCOUNT_ID

BUCKET = "AWS::S3::Bucket"
QUEUE = "AWS::SQS::Queue"
_BUCKET_KEPT = {"BucketName", "Tags"}
_QUEUE_KEPT = {"QueueName", "MessageRetentionPeriod", "RedrivePolicy", "Tags"}
_REASONS = {
    "AWS::DynamoDB::Table": "not provided by Triggerfish (no DynamoDB)",
    "AWS::SNS::Topic": "not provided by Triggerfish (no SNS): publish to a Triggerfish topic"
    " (an SQS queue of the service) instead",
    "AWS::SNS::Subscription": "not provided by Triggerfish (no SNS)",
    "AWS::IAM::Role": "not carried out: a function's access key has the permissions its"
    " IAM statements give on buckets, queues and functions",
    "AWS::IAM::Policy": "not carried out: a function's access key has the permissions its"
    " IAM statements give on buckets, queues and functions",
}
CALLED = "; the function will get connection errors when it calls it"
_PSEUDO = {"AWS::AccountId": ACCOUNT_ID, "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com"}
_SUB_RE = re.compile(r"\$\{([^}!]+)\}")


def kebab(name: str) -> str:
    """``consumeEvent`` -> ``consume-event``: lower case, words joined by ``-``."""
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", name).lower()
    return re.sub(r"[^a-z0-9_.-]+", "-", text).strip("-_.")


@dataclass(slots=True)
class Resources:
    """The ``resources.Resources`` of a service, and names for them."""

    resources: dict[str, Any]
    stack: str  # "<service>-<stage>", the stack's name on AWS
    region: str
    function_names: dict[str, str]  # logical id (HelloLambdaFunction) -> function name
    referenced: set[str] = field(default_factory=set)  # logical ids a function refers to

    def kind(self, logical_id: str) -> str:
        resource = self.resources.get(logical_id)
        return str(resource.get("Type", "")) if isinstance(resource, dict) else ""

    def properties(self, logical_id: str) -> dict[str, Any]:
        resource = self.resources.get(logical_id)
        props = resource.get("Properties") if isinstance(resource, dict) else None
        return props if isinstance(props, dict) else {}

    def bucket_name(self, logical_id: str) -> str:
        name = self.properties(logical_id).get("BucketName")
        if isinstance(name, str | dict):
            return str(self.resolve(name, f"resources.Resources.{logical_id}.BucketName"))
        return kebab(f"{self.stack}-{logical_id}")[:63]

    def queue_name(self, logical_id: str) -> str:
        name = self.properties(logical_id).get("QueueName")
        if isinstance(name, str | dict):
            return str(self.resolve(name, f"resources.Resources.{logical_id}.QueueName"))
        return kebab(f"{self.stack}-{logical_id}")[:80]

    # -- intrinsic functions ------------------------------------------------------------

    def resolve(self, value: Any, where: str) -> Any:
        """``value`` with ``Ref``, ``Fn::GetAtt``, ``Fn::Sub`` and ``Fn::Join`` worked
        out to the names and ARNs the resources have here."""
        if isinstance(value, list):
            return [self.resolve(item, f"{where}[{i}]") for i, item in enumerate(value)]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            handlers: dict[str, Callable[[Any, str], Any]] = {
                "Ref": self._ref,
                "Fn::GetAtt": self._get_att,
                "Fn::Sub": self._sub,
                "Fn::Join": self._join,
            }
            if key in handlers:
                return handlers[key](arg, f"{where}.{key}")
            if key.startswith("Fn::"):
                raise ConfigError(
                    f"{where}: {key} is not worked out by Triggerfish (it resolves Ref,"
                    " Fn::GetAtt, Fn::Sub and Fn::Join); write the value itself"
                )
        return {k: self.resolve(v, f"{where}.{k}") for k, v in value.items()}

    def _ref(self, name: Any, where: str) -> Any:
        if not isinstance(name, str):
            raise ConfigError(f"{where}: expected the name of a resource, got {name!r}")
        if name in _PSEUDO:
            return _PSEUDO[name]
        if name == "AWS::Region":
            return self.region
        if name == "AWS::StackName":
            return self.stack
        if name in self.function_names:
            return self.function_names[name]
        kind = self._known(name, where)
        self.referenced.add(name)
        if kind == BUCKET:
            return self.bucket_name(name)
        if kind == QUEUE:  # a queue's Ref is its URL; Triggerfish reads the last segment
            return f"https://sqs.{self.region}.amazonaws.com/{ACCOUNT_ID}/{self.queue_name(name)}"
        return name

    def _get_att(self, arg: Any, where: str) -> Any:
        if isinstance(arg, str):
            arg = arg.split(".", 1)
        if not (isinstance(arg, list) and len(arg) == 2 and all(isinstance(a, str) for a in arg)):
            raise ConfigError(f"{where}: expected [LogicalId, Attribute], got {arg!r}")
        name, attribute = arg
        if name in self.function_names:
            return f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{self.function_names[name]}"
        kind = self._known(name, where)
        self.referenced.add(name)
        if kind == BUCKET:
            bucket = self.bucket_name(name)
            return f"arn:aws:s3:::{bucket}" if attribute == "Arn" else f"{bucket}.s3.amazonaws.com"
        if kind == QUEUE:
            queue = self.queue_name(name)
            if attribute == "QueueName":
                return queue
            return f"arn:aws:sqs:{self.region}:{ACCOUNT_ID}:{queue}"
        service = kind.split("::")[1].lower() if kind.count("::") == 2 else "resource"
        return f"arn:aws:{service}:{self.region}:{ACCOUNT_ID}:{name}"

    def _sub(self, arg: Any, where: str) -> str:
        text, values = (arg[0], arg[1]) if isinstance(arg, list) and len(arg) == 2 else (arg, {})
        if not isinstance(text, str) or not isinstance(values, dict):
            raise ConfigError(f"{where}: expected a string, or [string, {{name: value}}]")

        def replace(match: re.Match[str]) -> str:
            key = match.group(1).strip()
            if key in values:
                return str(self.resolve(values[key], where))
            if "." in key:
                return str(self._get_att(key.split(".", 1), where))
            return str(self._ref(key, where))

        return _SUB_RE.sub(replace, text)

    def _join(self, arg: Any, where: str) -> str:
        if not (isinstance(arg, list) and len(arg) == 2 and isinstance(arg[1], list)):
            raise ConfigError(f"{where}: expected [separator, [values...]]")
        parts = self.resolve(arg[1], where)
        return str(arg[0]).join(str(part) for part in parts)

    def _known(self, name: str, where: str) -> str:
        if name not in self.resources:
            known = ", ".join(sorted(self.resources)) or "none"
            raise ConfigError(
                f"{where}: no resource named {name!r} in resources.Resources (resources: {known})"
            )
        return self.kind(name)

    # -- what becomes of each resource --------------------------------------------------

    def topics(self) -> dict[str, dict[str, Any]]:
        """The topic of each queue, with the queue's retention."""
        topics: dict[str, dict[str, Any]] = {}
        for logical_id in self.resources:
            if self.kind(logical_id) == QUEUE:
                period = self.properties(logical_id).get("MessageRetentionPeriod")
                config = {"retention": int(period)} if period is not None else {}
                topics[self.queue_name(logical_id)] = config
        return topics

    def redrive(self, queue: str) -> tuple[str, int] | None:
        """The dead-letter queue and attempts of the queue named ``queue``, if it has a
        ``RedrivePolicy``."""
        for logical_id in self.resources:
            if self.kind(logical_id) != QUEUE or self.queue_name(logical_id) != queue:
                continue
            where = f"resources.Resources.{logical_id}.Properties.RedrivePolicy"
            policy = self.resolve(self.properties(logical_id).get("RedrivePolicy"), where)
            if isinstance(policy, dict) and isinstance(policy.get("deadLetterTargetArn"), str):
                return arn_name(policy["deadLetterTargetArn"]), int(
                    policy.get("maxReceiveCount", 3)
                )
        return None

    def report(self) -> tuple[list[Unsupported], list[str]]:
        """What is not carried out, and notes about what is."""
        unsupported: list[Unsupported] = []
        notes: list[str] = []
        for logical_id in self.resources:
            kind = self.kind(logical_id)
            where = f"resources.Resources.{logical_id}"
            kept = _BUCKET_KEPT if kind == BUCKET else _QUEUE_KEPT if kind == QUEUE else None
            if kept is None:
                called = logical_id in self.referenced
                reason = _REASONS.get(kind, "not provided by Triggerfish") + (
                    CALLED if called else ""
                )
                unsupported.append(Unsupported(where, kind or "resource", reason, called))
                continue
            for key in sorted(set(self.properties(logical_id)) - kept):
                unsupported.append(
                    Unsupported(
                        f"{where}.Properties.{key}",
                        f"{kind} property",
                        "not carried out by Triggerfish's object store"
                        if kind == BUCKET
                        else "not carried out: the queue is a Triggerfish topic, and its"
                        " triggers' retries follow their own policy",
                    )
                )
            if kind == BUCKET:
                notes.append(
                    f"bucket {self.bucket_name(logical_id)} ({where}) is made by the first"
                    " trigger on it, or by the first upload"
                )
        return unsupported, notes


def arn_name(arn: str) -> str:
    """The name at the end of an ARN (``arn:aws:sqs:us-east-1:1:jobs`` -> ``jobs``,
    ``arn:aws:events:...:event-bus/orders`` -> ``orders``); a name stays as it is."""
    return re.split(r"[:/]", arn)[-1] if arn.startswith("arn:") else arn


# -- IAM statements as permissions ------------------------------------------------------

_PUBLISH = {("sqs", "*"), ("events", "*"), ("events", "PutEvents")}
_S3_ARN_RE = re.compile(r"^arn:aws:s3:::([^/]+)(?:/(.*))?$")


def permissions(
    statements: list[Any], where: str
) -> tuple[dict[str, dict[str, list[str]] | list[str]], list[Unsupported]]:
    """The ``permissions`` that ``Allow`` statements (resolved) give a function's access
    key, and the statements or actions that grant nothing here."""
    read: list[str] = []
    write: list[str] = []
    publish: list[str] = []
    invoke: list[str] = []
    unsupported: list[Unsupported] = []
    for index, statement in enumerate(statements):
        at = f"{where}[{index}]"
        if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
            unsupported.append(
                Unsupported(at, "IAM statement", "only Allow statements are carried out")
            )
            continue
        actions = _as_list(statement.get("Action"))
        resources = [str(r) for r in _as_list(statement.get("Resource"))]
        left: list[str] = []
        for action in map(str, actions):
            service, _, verb = action.partition(":")
            if service == "s3":
                targets = [_bucket_pattern(r) for r in resources]
                if verb == "*" or verb.startswith(("Get", "List", "Head")):
                    read += targets
                if verb == "*" or verb.startswith(("Put", "Delete", "Abort", "Restore")):
                    write += targets
            elif (service, verb) in _PUBLISH or (
                service == "sqs" and verb.startswith("SendMessage")
            ):
                publish += [arn_name(r) if r != "*" else "*" for r in resources]
            elif service == "lambda" and (verb == "*" or verb.startswith("Invoke")):
                invoke += [arn_name(r) if r != "*" else "*" for r in resources]
            else:
                left.append(action)
        if left:
            unsupported.append(
                Unsupported(
                    at,
                    "IAM statement",
                    f"{', '.join(left)}: not granted; a function's access key grants reads and"
                    " writes of buckets, publishing to queues, buses and topics, and"
                    " invoking functions",
                )
            )
    granted: dict[str, dict[str, list[str]] | list[str]] = {}
    if read or write:
        granted["buckets"] = {"read": _unique(read), "write": _unique(write)}
    if publish:
        granted["publish"] = _unique(publish)
    if invoke:
        granted["invoke"] = _unique(invoke)
    return granted, unsupported


def _bucket_pattern(resource: str) -> str:
    if resource == "*":
        return "*"
    match = _S3_ARN_RE.match(resource)
    if match is None:
        return resource
    bucket, key = match.group(1), match.group(2)
    return bucket if key in (None, "", "*") else f"{bucket}/{key}"


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
