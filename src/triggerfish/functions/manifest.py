"""The deployment manifest, ``triggerfish.yaml``: its models and its loader.

``load_manifest`` reads the file (or the ``triggerfish.yaml`` of a folder), checks every
key against the models below and that each function's code folder and handler module
exist. Every mistake becomes one ``ConfigError`` whose message names the file, the key
path (``functions.resize.triggers[0].retry.max_attempts``) and what is expected there,
so a person can fix it without reading this code.

The models are also the stored form of a function's settings: ``FunctionConfig``
validates what the store returns, and ``TriggerConfig.group_id`` gives the consumer group
that a trigger keeps across redeploys, so its position in the topic survives them.
"""

from __future__ import annotations

import json
import os
import types
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, Field, PrivateAttr, model_validator
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import PydanticCustomError

from triggerfish.bus.names import TOPIC_RULE
from triggerfish.errors import ConfigError
from triggerfish.functions.brokers import BrokerConfig, Destinations
from triggerfish.functions.durable import DurableSettings
from triggerfish.functions.fields import (
    EXPECTED,
    NAME_RE,
    NAME_RULE,
    PLAIN,
    Duration,
    EnvKey,
    HandlerName,
    LayerName,
    Name,
    RuntimeName,
    StrictModel,
    TopicName,
)
from triggerfish.functions.logs import LogsConfig
from triggerfish.functions.permissions import PermissionsConfig
from triggerfish.functions.references import EnvSetting
from triggerfish.functions.triggers import AsyncRetry, TopicConfig, TriggerConfig
from triggerfish.functions.webhooks import WebhookConfig
from triggerfish.runtime.base import runtime_family

MANIFEST_NAMES = ("triggerfish.yaml", "triggerfish.yml")


class FunctionConfig(StrictModel):
    """The settings of one function as written in the manifest."""

    handler: HandlerName = Field(description='"module.function"')
    code: str | None = Field(default=None, description="a folder path, relative to the manifest")
    runtime: RuntimeName = Field(default="python", description='"python" or "python3.X"')
    memory: int = Field(
        default=128, ge=128, le=10240, description="an integer from 128 to 10240 MB"
    )
    timeout: float = Field(default=10.0, gt=0, le=900, description="seconds above 0, at most 900")
    max_concurrency: int = Field(
        default=10, ge=1, le=10000, description="an integer from 1 to 10000"
    )
    min_warm: int = Field(
        default=0, ge=0, le=1000, description="environments kept ready, an integer from 0 to 1000"
    )
    idle_ttl: float | None = Field(
        default=None,
        gt=0,
        le=86400,
        description="seconds an idle environment is kept, above 0, at most 86400",
    )
    max_invocations: int = Field(
        default=0,
        ge=0,
        description="invocations before an environment is replaced, 0 for never",
    )
    snapstart: bool = Field(
        default=False, description="true to fork environments from a snapshot taken after init"
    )
    environment: dict[EnvKey, EnvSetting] = Field(
        default_factory=dict,
        description="a mapping of variable names to strings or {secret: NAME}",
    )
    async_retry: AsyncRetry = Field(
        default_factory=AsyncRetry, description="a mapping with max_attempts and max_age"
    )
    dead_letter: TopicName | None = Field(default=None, description=TOPIC_RULE)
    destinations: Destinations = Field(
        default_factory=Destinations,
        description="a mapping with on_success and on_failure targets",
    )
    triggers: list[TriggerConfig] = Field(
        default_factory=list, description="a list of triggers, each a mapping with a topic"
    )
    permissions: PermissionsConfig = Field(
        default_factory=PermissionsConfig,
        description="a mapping with buckets, publish, invoke and deploy (docs/credentials.md)",
    )
    layers: list[LayerName] = Field(
        default_factory=list,
        description="a list of layer folders: a name (the folder layers/<name> beside the"
        " manifest) or a path relative to the manifest",
    )
    logging: LogsConfig = Field(
        default_factory=LogsConfig,
        description="a mapping with format (text or json), level and system_level",
    )
    records_retention: Duration | None = Field(
        default=None,
        gt=0,
        description='how long invocation records are kept: a duration ("30s", "7d");'
        " default: the node's records_retention",
    )

    durable: DurableSettings | None = Field(
        default=None,
        description="a mapping with execution_timeout and retention: the function runs"
        " durable executions (docs/durable.md)",
    )

    @model_validator(mode="after")
    def _checks(self) -> FunctionConfig:
        seen: set[str] = set()
        for trigger in self.triggers:
            if trigger.trigger_name in seen:
                raise PydanticCustomError(
                    PLAIN,
                    "two triggers are named '{name}'; give each a distinct 'name'",
                    {"name": trigger.trigger_name},
                )
            seen.add(trigger.trigger_name)
        return self

    def version_config(self) -> dict[str, Any]:
        """What a version stores and its digest covers: everything but code, triggers and
        permissions (the function's, kept on its access key), and destinations when there
        are none, so digests made before they existed hold."""
        exclude = {"code", "triggers", "permissions"}
        if self.destinations == Destinations():
            exclude.add("destinations")
        if not self.layers:
            exclude.add("layers")
        if self.logging == LogsConfig():
            exclude.add("logging")
        if self.records_retention is None:
            exclude.add("records_retention")
        if self.durable is None:
            exclude.add("durable")
        return self.model_dump(mode="json", exclude=exclude)


class Manifest(StrictModel):
    """A whole ``triggerfish.yaml``; ``path`` is the file it was read from."""

    topics: dict[TopicName, TopicConfig] = Field(
        default_factory=dict, description="a mapping of topic names to {retention: ...}"
    )
    functions: dict[Name, FunctionConfig] = Field(
        description="a mapping of function names to their settings"
    )
    webhooks: dict[Name, WebhookConfig] = Field(
        default_factory=dict, description="a mapping of webhook names to {topic, secret, ...}"
    )
    brokers: dict[Name, BrokerConfig] = Field(
        default_factory=dict, description="a mapping of broker names to {kind, url, ...}"
    )
    app: str | None = Field(
        default=None,
        description='a Python file relative to the manifest ("app.py"), or "module:attribute",'
        " whose App declares more functions (docs/sdk.md)",
    )
    _path: Path = PrivateAttr(default_factory=lambda: Path(MANIFEST_NAMES[0]))

    @model_validator(mode="after")
    def _known_brokers(self) -> Manifest:
        for name, config in self.functions.items():
            for key in ("on_success", "on_failure"):
                text = getattr(config.destinations, key)
                broker = text.split(":", 1)[0] if text and ":" in text else None
                if broker is not None and broker not in self.brokers:
                    known = ", ".join(sorted(self.brokers)) or "none declared"
                    raise PydanticCustomError(
                        PLAIN,
                        "functions.{function}.destinations.{key}: no broker named '{broker}'"
                        " (brokers: {known}); declare it under 'brokers:'",
                        {"function": name, "key": key, "broker": broker, "known": known},
                    )
        return self

    @property
    def path(self) -> Path:
        return self._path

    @property
    def root(self) -> Path:
        """The folder that code paths are relative to."""
        return self._path.parent

    def code_dir(self, function: str) -> Path:
        config = self.functions[function]
        return self.root / (config.code if config.code is not None else function)

    def layer_dirs(self, function: str) -> list[Path]:
        """The folders of ``function``'s layers, in order: a bare name is the folder of
        that name in ``layers/`` beside the manifest, anything else a path from it."""
        return [
            self.root / (entry if "/" in entry or entry.startswith(".") else f"layers/{entry}")
            for entry in self.functions[function].layers
        ]


def load_manifest(path: Path) -> Manifest:
    """Read and check ``triggerfish.yaml`` (``path`` is the file or its folder)."""
    file = _manifest_file(Path(path))
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read the manifest: {exc}") from exc
    return check_manifest(parse_manifest(text, file))


def check_manifest(manifest: Manifest, *, origin: str | None = None) -> Manifest:
    """Check that each function's code folder, handler module and layers exist, and make
    watched folders absolute. ``origin`` starts the messages (the manifest's file)."""
    file = origin or str(manifest.path)
    for name, config in manifest.functions.items():
        _check_code(file, manifest.code_dir(name), name, config)
        for index, layer in enumerate(manifest.layer_dirs(name)):
            if not layer.is_dir():
                raise ConfigError(
                    f"{file}: functions.{name}.layers[{index}]: the layer folder {layer}"
                    " does not exist"
                )
        # A watched folder is relative to the manifest; the server gets it absolute.
        triggers = []
        for trigger in config.triggers:
            if trigger.files is not None:
                folder = str((manifest.root / trigger.files.path).resolve())
                files = trigger.files.model_copy(update={"path": folder})
                trigger = trigger.model_copy(update={"files": files})
            triggers.append(trigger)
        if triggers != config.triggers:
            manifest.functions[name] = config.model_copy(update={"triggers": triggers})
    return manifest


def parse_manifest(text: str, file: Path) -> Manifest:
    """Check the text of a manifest (code folders are not looked at)."""
    try:
        document = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = exc.problem or exc.context or "syntax error"
        raise ConfigError(f"{file}{where}: invalid YAML: {problem}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: invalid YAML: {exc}") from exc
    if document is None:
        raise ConfigError(f"{file}: the manifest is empty; expected a mapping with 'functions'")
    if not isinstance(document, dict):
        raise ConfigError(
            f"{file}: expected a mapping with 'functions' at the top, got {_show(document)}"
        )
    return manifest_from_document(document, file)


def manifest_from_document(
    document: dict[str, Any], file: Path, *, origin: str | None = None
) -> Manifest:
    """Check a manifest given as data (what the YAML holds); ``file`` is where it is
    deemed to be, ``origin`` starts the messages (``file`` by default)."""
    try:
        manifest = Manifest.model_validate(document)
    except PydanticValidationError as exc:
        lines = [_message(origin or str(file), error, Manifest) for error in exc.errors()]
        raise ConfigError("\n".join(lines)) from None
    manifest._path = file
    return manifest


def parse_function_config(name: str, raw: object, *, origin: str = "config") -> FunctionConfig:
    """Check the settings of one function given apart from a manifest (by the API).

    Messages start with ``origin`` and give key paths within the function's settings,
    e.g. ``config: triggers[0].batch_size: expected an integer from 1 to 10000, got 0``.
    """
    if not NAME_RE.match(name):
        raise ConfigError(f"{origin}: function name: expected {NAME_RULE}, got {_show(name)}")
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin}: expected a mapping of function settings, got {_show(raw)}")
    try:
        return FunctionConfig.model_validate(raw)
    except PydanticValidationError as exc:
        lines = [_message(origin, error, FunctionConfig) for error in exc.errors()]
        raise ConfigError("\n".join(lines)) from None


def _manifest_file(path: Path) -> Path:
    if path.is_dir():
        for name in MANIFEST_NAMES:
            if (path / name).is_file():
                return path / name
        raise ConfigError(f"{path}: no {MANIFEST_NAMES[0]} in this folder")
    if not path.exists():
        raise ConfigError(f"{path}: no such file")
    return path


def _check_code(file: str | Path, code_dir: Path, name: str, config: FunctionConfig) -> None:
    key = f"functions.{name}"
    if not code_dir.is_dir():
        hint = "code" if config.code is not None else f"code (default ./{name})"
        raise ConfigError(f"{file}: {key}.{hint}: the code folder {code_dir} does not exist")
    family = runtime_family(config.runtime)
    if family == "provided":
        bootstrap = code_dir / "bootstrap"
        if not bootstrap.is_file():
            raise ConfigError(
                f"{file}: {key}.runtime: a {config.runtime} function needs an executable"
                f" 'bootstrap' in its code folder; {code_dir} has none"
            )
        if not os.access(bootstrap, os.X_OK):
            raise ConfigError(
                f"{file}: {key}.runtime: {bootstrap} is not executable; run chmod +x on it"
            )
        return
    module = config.handler.rsplit(".", 1)[0].replace(".", "/")
    if family == "nodejs":
        names = [f"{module}{ext}" for ext in (".js", ".mjs", ".cjs")]
        if not any((code_dir / name).is_file() for name in names):
            raise ConfigError(
                f"{file}: {key}.handler: the handler module {module}.js (or .mjs, .cjs) is"
                f" not in {code_dir}"
            )
        return
    candidates = (code_dir / f"{module}.py", code_dir / module / "__init__.py")
    if not any(candidate.is_file() for candidate in candidates):
        raise ConfigError(
            f"{file}: {key}.handler: the handler module {module}.py is not in {code_dir}"
        )


class _StrictLoader(yaml.SafeLoader):
    """A safe loader that refuses a key written twice in one mapping."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"the key {key!r} appears twice", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _message(file: str, error: Any, root: type[BaseModel]) -> str:
    loc: tuple[str | int, ...] = tuple(error["loc"])
    is_key = bool(loc) and loc[-1] == "[key]"
    if is_key:
        loc = loc[:-1]
    where = _key_path(loc) or "(top)"
    kind = error["type"]
    got = _show(error.get("input"))
    if kind == PLAIN:
        return f"{file}: {error['msg']}" if not loc else f"{file}: {where}: {error['msg']}"
    if kind == EXPECTED:
        return f"{file}: {where}: {error['msg']}, got {got}"
    description, allowed = _describe(root, loc)
    if kind == "extra_forbidden":
        keys = ", ".join(allowed or [])
        return f"{file}: {where}: unknown key; expected one of: {keys}"
    if kind == "missing":
        return f"{file}: {where}: missing; expected {description or 'a value'}"
    if description is None:
        return f"{file}: {where}: {error['msg'][:1].lower()}{error['msg'][1:]}, got {got}"
    return f"{file}: {where}: expected {description}, got {got}"


def _key_path(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _describe(model: type[BaseModel], loc: tuple[str | int, ...]) -> tuple[str | None, list[str]]:
    """The description of the field at ``loc``, and the keys allowed beside it."""
    current: Any = model
    description: str | None = None
    allowed: list[str] = []
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            allowed = list(current.model_fields)
            field = current.model_fields.get(str(part))
            if field is None:
                return description, allowed
            description, current = field.description, field.annotation
        elif get_origin(current) in (dict, list):
            current = _unwrap(get_args(current)[-1])
            if isinstance(current, type) and issubclass(current, BaseModel):
                description = "a mapping with keys " + ", ".join(current.model_fields)
        else:
            break
    return description, allowed


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            others = [arg for arg in get_args(annotation) if arg is not type(None)]
            annotation = others[0]
        else:
            return annotation


def _show(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
