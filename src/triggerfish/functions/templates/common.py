"""What every template translator (AWS SAM, serverless.yml) shares: the result of a
translation, the report of what is not carried out, and the mapping of AWS runtimes to
the local ones.

A translator reads a template written for AWS and returns a ``TemplateResult``: the
``Manifest`` that ``triggerfish deploy`` deploys as if it were a ``triggerfish.yaml``,
plus what a person must know about the translation. Nothing in a template is dropped
silently: each resource, property or event not carried out is an ``Unsupported`` entry
with its reason, and ``called`` says whether the functions' code will call it (it is
referenced from a function's environment or policies), so the person knows which ones
will fail at run time.
"""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from triggerfish.errors import ConfigError
from triggerfish.functions.manifest import Manifest

SERVER_URL = "${TriggerfishUrl}"  # in an output: the server's URL, filled in by the CLI


@dataclass(frozen=True, slots=True)
class Unsupported:
    """One thing of a template that the deploy does not carry out."""

    where: str  # a key path in the template: "Resources.Table", "...Events.Stream"
    what: str  # "AWS::DynamoDB::Table", "Tracing", "DynamoDB event"
    reason: str
    called: bool = False  # a function's code will call it

    def line(self) -> str:
        return f"{self.where} ({self.what}): {self.reason}"


@dataclass(frozen=True, slots=True)
class Output:
    """A value the template declares in ``Outputs``, shown after the deploy."""

    name: str
    value: str  # may hold SERVER_URL, see ``TemplateResult.outputs_for``
    description: str = ""


@dataclass(slots=True)
class TemplateResult:
    """A translated template: the manifest to deploy, and what to tell the person."""

    manifest: Manifest
    notes: list[str] = field(default_factory=list)
    unsupported: list[Unsupported] = field(default_factory=list)
    outputs: list[Output] = field(default_factory=list)

    def outputs_for(self, server_url: str) -> list[Output]:
        """The outputs with the server's URL in place of ``SERVER_URL``."""
        base = server_url.rstrip("/")
        return [
            Output(o.name, o.value.replace(SERVER_URL, base), o.description) for o in self.outputs
        ]


# File names read as templates, in the order a folder is searched, and the function
# ("module:function") that reads each: ``reader(file, parameters) -> TemplateResult``.
TEMPLATE_READERS: dict[str, str] = {
    "template.yaml": "triggerfish.functions.templates.sam:read_sam",
    "template.yml": "triggerfish.functions.templates.sam:read_sam",
    "serverless.yml": "triggerfish.functions.templates.serverless:read_serverless",
    "serverless.yaml": "triggerfish.functions.templates.serverless:read_serverless",
}


def find_template(path: Path) -> Path | None:
    """The template at ``path`` (a file with one of the names above, or a folder holding
    one), or None when ``path`` is something else."""
    if path.is_dir():
        return next((path / n for n in TEMPLATE_READERS if (path / n).is_file()), None)
    return path if path.name in TEMPLATE_READERS and path.is_file() else None


def load_template(file: Path, parameters: Mapping[str, str] | None = None) -> TemplateResult:
    """Translate the template ``file`` (found by ``find_template``); ``parameters``
    override the template's own (``--parameter-overrides``). ConfigError when it cannot
    be deployed, saying what is wrong and how to fix it."""
    module, _, function = TEMPLATE_READERS[file.name].partition(":")
    reader = getattr(importlib.import_module(module), function)
    result: TemplateResult = reader(file, dict(parameters or {}))
    return result


_AWS_RUNTIME_RE = re.compile(r"^(python|nodejs)(\d+)(?:\.(\d+|x))?$")


def map_runtime(runtime: str) -> tuple[str, str | None]:
    """The local runtime for an AWS ``Runtime`` (``python3.12``, ``nodejs20.x``), and a
    note when the version that will run differs from the one asked for. Other runtimes
    (``provided.al2023``) are kept as they are; a runtime Triggerfish does not run
    raises ValueError with the runtimes it does run."""
    if runtime.startswith("provided"):
        return runtime, None
    match = _AWS_RUNTIME_RE.match(runtime)
    if match is None:
        raise ValueError(
            f"the runtime {runtime!r} is not run by Triggerfish; it runs python3.X,"
            " nodejsNN.x and provided (a bootstrap executable)"
        )
    family = match.group(1)
    local = local_version(family)
    if family == "python":
        wanted = f"{match.group(2)}.{match.group(3)}" if match.group(3) else match.group(2)
        same = local is not None and (local == wanted or local.startswith(wanted + "."))
        mapped = "python"
    else:
        wanted = match.group(2)
        same = local is not None and local.split(".")[0] == wanted
        mapped = f"nodejs{local.split('.')[0]}.x" if local else runtime
    if same:
        return mapped, None
    shown = local or "not installed"
    return mapped, f"{runtime} runs on the local {family} {shown}"


@cache
def local_version(family: str) -> str | None:
    """The version of the local interpreter of ``family`` ("3.11", "20.20.2"), if any."""
    if family == "python":
        return f"{sys.version_info.major}.{sys.version_info.minor}"
    node = shutil.which("node")
    if node is None:
        return None
    try:
        out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip().removeprefix("v") or None


# -- YAML with CloudFormation's short forms ---------------------------------------------


class CloudFormationLoader(yaml.SafeLoader):
    """A safe loader that reads CloudFormation's short forms as their long forms:
    ``!Ref x`` as ``{"Ref": "x"}``, ``!Sub ...`` as ``{"Fn::Sub": ...}``, ``!GetAtt a.b``
    as ``{"Fn::GetAtt": ["a", "b"]}`` (SAM templates and serverless.yml's resources)."""


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix in ("Ref", "Condition"):
        return {suffix: value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


CloudFormationLoader.add_multi_constructor("!", _construct_tag)


def load_yaml(text: str, file: Path) -> Any:
    """A template's YAML with CloudFormation's short forms; ConfigError naming the file."""
    try:
        return yaml.load(text, Loader=CloudFormationLoader)  # a SafeLoader
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: invalid YAML: {exc}") from exc
