"""AWS SAM templates (``template.yaml``) read as a Triggerfish ``Manifest``.

``read_sam`` translates what Triggerfish carries out (docs/migrate.md has the table):
``AWS::Serverless::Function`` with ``Globals``, and its events ``S3``, ``Api`` (an HTTP
route with API Gateway's REST payload, v1), ``HttpApi`` (payload 2.0), ``Schedule``,
``ScheduleV2``, ``SQS``, ``EventBridgeRule`` and ``CloudWatchEvent``; the APIs' ``Cors``
and ``CorsConfiguration`` as the routes' ``cors`` (``sam_cors``);
``AWS::S3::Bucket`` (a bucket), ``AWS::SQS::Queue`` (a topic) and
``AWS::Serverless::LayerVersion`` (a layer folder). ``!Ref``, ``!Sub``, ``!GetAtt``,
``!Join``, ``!Select``, ``!Split`` and ``!If`` on a known condition are resolved, with
``Parameters`` taking their defaults or the values given at deploy.

Everything else is reported as ``Unsupported`` with its reason; a resource referenced
from a function's environment or policies is marked as one the function's code calls.
"""

from __future__ import annotations

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
)

REGION = "us-east-1"
ACCOUNT = "123456789012"
_REST_API = "ServerlessRestApi"
_HTTP_API = "ServerlessHttpApi"
# An API Gateway URL: its host (whose first label is the API), and for a REST API the stage.
_API_URL_RE = re.compile(r"https?://([A-Za-z0-9-]+)\.execute-api\.[A-Za-z0-9.-]+\.amazonaws\.com")
_STAGE_RE = re.compile(r"^/[A-Za-z0-9_-]+")
_FUNCTION = "AWS::Serverless::Function"
_LAYER = "AWS::Serverless::LayerVersion"
_BUCKET = "AWS::S3::Bucket"
_QUEUE = "AWS::SQS::Queue"
_APIS = ("AWS::Serverless::Api", "AWS::Serverless::HttpApi")


# -- YAML with CloudFormation's short forms --------------------------------------------


def parse_sam(text: str, file: Path) -> dict[str, Any]:
    document = load_yaml(text, file)
    if not isinstance(document, dict) or not isinstance(document.get("Resources"), dict):
        raise ConfigError(f"{file}: not an AWS SAM template: expected a mapping with 'Resources'")
    return document


# -- names ------------------------------------------------------------------------------


def kebab(logical_id: str) -> str:
    """``HelloWorldFunction`` -> ``hello-world-function`` (a Triggerfish name)."""
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", logical_id).lower()
    text = re.sub(r"[^a-z0-9_-]+", "-", text).strip("-_")
    return text[:64] or "function"


# -- the translation ---------------------------------------------------------------------


def read_sam(file: Path, parameters: dict[str, str]) -> TemplateResult:
    """Translate the SAM template ``file``; ``parameters`` override its ``Parameters``."""
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read the template: {exc}") from exc
    return SamTemplate(parse_sam(text, file), file, parameters).translate()


class SamTemplate:
    def __init__(self, document: dict[str, Any], file: Path, parameters: dict[str, str]) -> None:
        self.document = document
        self.file = file
        self.resources: dict[str, dict[str, Any]] = {
            key: value for key, value in document["Resources"].items() if isinstance(value, dict)
        }
        self.parameters = self._parameters(parameters)
        self.conditions: dict[str, Any] = document.get("Conditions") or {}
        self.notes: list[str] = []
        self.unsupported: list[Unsupported] = []
        self.called: set[str] = set()  # resources a function's code calls
        self.buses: set[str] = set()  # topics EventBridge rules listen on

    def _parameters(self, given: dict[str, str]) -> dict[str, Any]:
        declared = self.document.get("Parameters") or {}
        unknown = sorted(set(given) - set(declared))
        if unknown:
            raise ConfigError(
                f"{self.file}: --parameter-overrides: the template has no parameter"
                f" {unknown[0]!r} (it has: {', '.join(declared) or 'none'})"
            )
        values: dict[str, Any] = {}
        for name, spec in declared.items():
            if name in given:
                values[name] = given[name]
            elif isinstance(spec, dict) and "Default" in spec:
                values[name] = spec["Default"]
            else:
                raise ConfigError(
                    f"{self.file}: Parameters.{name} has no Default; give it with"
                    f" --parameter-overrides {name}=VALUE"
                )
        return values

    # -- intrinsic functions --

    def resolve(self, value: Any, where: str) -> Any:
        """``value`` with its intrinsic functions replaced by their values."""
        if isinstance(value, list):
            return [self.resolve(item, where) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            key, arg = next(iter(value.items()))
            if key == "Ref":
                return self.ref(str(arg), where)
            if key == "Fn::GetAtt":
                parts = arg if isinstance(arg, list) else str(arg).split(".", 1)
                return self.get_att(str(parts[0]), str(parts[1]), where)
            if key == "Fn::Sub":
                return self.sub(arg, where)
            if key == "Fn::Join":
                sep, items = arg
                return str(sep).join(str(i) for i in self.resolve(items, where))
            if key == "Fn::Select":
                index, items = self.resolve(arg, where)
                return items[int(index)]
            if key == "Fn::Split":
                sep, text = self.resolve(arg, where)
                return str(text).split(str(sep))
            if key == "Fn::If":
                name, yes, no = arg
                return self.resolve(yes if self.condition(name, where) else no, where)
            if key.startswith("Fn::"):
                self.unsupported.append(
                    Unsupported(where, key, "this intrinsic function is not evaluated")
                )
                return ""
        return {k: self.resolve(v, where) for k, v in value.items()}

    def condition(self, name: str, where: str) -> bool:
        spec = self.conditions.get(name)
        if not isinstance(spec, dict) or len(spec) != 1:
            raise ConfigError(f"{self.file}: {where}: no condition named {name!r}")
        key, arg = next(iter(spec.items()))
        if key == "Fn::Equals":
            left, right = self.resolve(arg, where)
            return str(left) == str(right)
        if key == "Fn::Not":
            return not self._truth(arg[0], where)
        if key == "Fn::And":
            return all(self._truth(a, where) for a in arg)
        if key == "Fn::Or":
            return any(self._truth(a, where) for a in arg)
        raise ConfigError(f"{self.file}: Conditions.{name}: {key} is not evaluated")

    def _truth(self, value: Any, where: str) -> bool:
        if isinstance(value, dict) and "Condition" in value:
            return self.condition(value["Condition"], where)
        name = f"_inline{id(value)}"
        self.conditions[name] = value
        return self.condition(name, where)

    def ref(self, name: str, where: str) -> Any:
        pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::StackName": kebab(self.file.parent.resolve().name),
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": None,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in (_REST_API, _HTTP_API):
            return name  # the URL is rewritten to the server's in ``_output``
        resource = self.resources.get(name)
        if resource is None:
            raise ConfigError(
                f"{self.file}: {where}: !Ref {name}: no parameter or resource of that name"
            )
        kind = resource.get("Type")
        if kind == _FUNCTION:
            return self.function_name(name)
        if kind == _BUCKET:
            return self.bucket_name(name)
        if kind == _QUEUE:
            return f"http://localhost/{ACCOUNT}/{self.queue_topic(name)}"  # a queue URL
        return self.physical_name(name)

    def get_att(self, name: str, attribute: str, where: str) -> Any:
        if name.endswith("Role") and name[: -len("Role")] in self.resources:
            return f"arn:aws:iam::{ACCOUNT}:role/{kebab(name)}"
        resource = self.resources.get(name)
        if resource is None:
            raise ConfigError(f"{self.file}: {where}: !GetAtt {name}.{attribute}: no such resource")
        kind = resource.get("Type")
        if kind == _FUNCTION and attribute == "Arn":
            return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name(name)}"
        if kind == _BUCKET and attribute in ("Arn", "DomainName", "RegionalDomainName"):
            bucket = self.bucket_name(name)
            return f"arn:aws:s3:::{bucket}" if attribute == "Arn" else f"{bucket}.s3.amazonaws.com"
        if kind == _QUEUE and attribute in ("Arn", "QueueName", "QueueUrl"):
            topic = self.queue_topic(name)
            if attribute == "Arn":
                return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{topic}"
            return topic if attribute == "QueueName" else f"http://localhost/{ACCOUNT}/{topic}"
        if attribute == "Arn":
            service = str(kind).split("::")[1].lower() if "::" in str(kind) else "unknown"
            return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{self.physical_name(name)}"
        return self.physical_name(name)

    def sub(self, arg: Any, where: str) -> str:
        text, variables = (arg[0], arg[1]) if isinstance(arg, list) else (arg, {})
        values = {k: self.resolve(v, where) for k, v in (variables or {}).items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in values:
                return str(values[name])
            if "." in name and name.split(".", 1)[0] in self.resources:
                resource, attribute = name.split(".", 1)
                return str(self.get_att(resource, attribute, where))
            return str(self.ref(name, where))

        return re.sub(r"\$\{([^}]+)\}", replace, str(text))

    # -- names of resources --

    def _name_property(self, logical_id: str, key: str) -> str | None:
        props = self.resources[logical_id].get("Properties") or {}
        value = props.get(key)
        if value is None:
            return None
        return str(self.resolve(value, f"Resources.{logical_id}.Properties.{key}"))

    def function_name(self, logical_id: str) -> str:
        """``FunctionName`` when the template gives one, else its logical id, as a name."""
        return kebab(self._name_property(logical_id, "FunctionName") or logical_id)

    def bucket_name(self, logical_id: str) -> str:
        return self._name_property(logical_id, "BucketName") or kebab(logical_id)

    def queue_topic(self, logical_id: str) -> str:
        return self._name_property(logical_id, "QueueName") or kebab(logical_id)

    def physical_name(self, logical_id: str) -> str:
        """What ``!Ref`` gives for a resource Triggerfish does not provide: its logical id."""
        return logical_id

    # -- the whole template --

    def translate(self) -> TemplateResult:
        functions: dict[str, Any] = {}
        topics: dict[str, Any] = {}
        for logical_id, resource in self.resources.items():
            kind = resource.get("Type")
            where = f"Resources.{logical_id}"
            if kind == _FUNCTION:
                functions[self.function_name(logical_id)] = self.function(logical_id, resource)
            elif kind == _QUEUE:
                topics[self.queue_topic(logical_id)] = self.queue(logical_id, resource)
            elif kind == _BUCKET:
                self.bucket(logical_id, resource)
            elif kind in (_LAYER, *_APIS):
                self.api_or_layer(logical_id, resource)
            else:
                self.unsupported.append(
                    Unsupported(where, str(kind), f"{kind} is not provided by Triggerfish")
                )
        for bus in sorted(self.buses - set(topics)):
            topics[bus] = {}
        document: dict[str, Any] = {"functions": functions}
        if topics:
            document["topics"] = topics
        manifest = manifest_from_document(document, self.file, origin=str(self.file))
        manifest = check_manifest(manifest, origin=str(self.file))
        unsupported = [self._with_called(u) for u in self.unsupported]
        return TemplateResult(manifest, self.notes, unsupported, self.outputs())

    def _with_called(self, entry: Unsupported) -> Unsupported:
        logical_id = entry.where.removeprefix("Resources.")
        if entry.where.startswith("Resources.") and logical_id in self.called:
            reason = entry.reason + "; the function will get connection errors when it calls it"
            return Unsupported(entry.where, entry.what, reason, called=True)
        return entry

    def queue(self, logical_id: str, resource: dict[str, Any]) -> dict[str, Any]:
        props = resource.get("Properties") or {}
        config: dict[str, Any] = {}
        if "MessageRetentionPeriod" in props:
            config["retention"] = int(self.resolve(props["MessageRetentionPeriod"], logical_id))
        for key in sorted(set(props) - {"QueueName", "MessageRetentionPeriod", "Tags"}):
            self.unsupported.append(
                Unsupported(
                    f"Resources.{logical_id}.Properties.{key}",
                    f"{_QUEUE} property",
                    "not carried out: the queue is a Triggerfish topic",
                )
            )
        return config

    def bucket(self, logical_id: str, resource: dict[str, Any]) -> None:
        props = resource.get("Properties") or {}
        for key in sorted(set(props) - {"BucketName", "Tags"}):
            self.unsupported.append(
                Unsupported(
                    f"Resources.{logical_id}.Properties.{key}",
                    f"{_BUCKET} property",
                    "not carried out by Triggerfish's object store",
                )
            )
        self.notes.append(
            f"bucket {self.bucket_name(logical_id)} (Resources.{logical_id}) is made by the"
            " first trigger on it, or by the first upload"
        )

    def api_or_layer(self, logical_id: str, resource: dict[str, Any]) -> None:
        props = resource.get("Properties") or {}
        if resource.get("Type") == _LAYER:
            return  # read by the functions that use it
        carried = {"StageName", "Name", "Description", "Tags", "Cors", "CorsConfiguration"}
        for key in sorted(set(props) - carried):
            self.unsupported.append(
                Unsupported(
                    f"Resources.{logical_id}.Properties.{key}",
                    f"{resource.get('Type')} property",
                    "not carried out: routes are served under /fn by Triggerfish",
                )
            )

    # -- functions --

    def function(self, logical_id: str, resource: dict[str, Any]) -> dict[str, Any]:
        from triggerfish.functions.templates.sam_events import function_config

        return function_config(self, logical_id, resource)

    # -- outputs --

    def _api_url(self, text: str) -> str:
        """An API Gateway URL as the server's ``/fn``, without a REST API's stage."""
        match = _API_URL_RE.match(text)
        if match is None:
            return text
        api = match.group(1)
        rest = text[match.end() :]
        http_api = api == _HTTP_API or (
            self.resources.get(api, {}).get("Type") == "AWS::Serverless::HttpApi"
        )
        if not http_api:
            rest = _STAGE_RE.sub("", rest, count=1)
        return f"{SERVER_URL}/fn{rest}"

    def outputs(self) -> list[Output]:
        out = []
        for name, spec in (self.document.get("Outputs") or {}).items():
            if not isinstance(spec, dict) or "Value" not in spec:
                continue
            value = self.resolve(spec["Value"], f"Outputs.{name}")
            text = value if isinstance(value, str) else str(value)
            text = self._api_url(text)
            out.append(Output(name, text, str(spec.get("Description") or "").strip()))
        return out
