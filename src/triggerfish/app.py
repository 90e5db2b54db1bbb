"""``App``: functions and their triggers declared in Python with decorators, instead of
in ``triggerfish.yaml``.

``App.manifest(root)`` gives the very ``Manifest`` that ``load_manifest`` gives for the
same project written in YAML, so deploys, ``triggerfish dev`` and ``TestApp`` share one
path. A decorator checks nothing: ``manifest`` checks everything with the manifest's own
models, and its messages name the function and the key as they would for the YAML form.

Every execution environment whose code uses ``App`` imports this module, so it imports
only the standard library; the manifest's models are imported inside ``manifest``.

A decorator returns the function itself, unless its first parameter is annotated with a
pydantic model (or a list of one): then it returns a wrapper that validates the event's
data as that model before calling the function, and passes a model instance through as
it is, so a test may call it either way. The module's attribute holds the wrapper, so the
manifest's ``handler: "module.name"`` finds it wherever the handler is loaded. Data that
does not fit raises ``InvalidEventError``, which a trigger dead-letters without retrying.
"""

from __future__ import annotations

import base64
import functools
import inspect
import os
import sys
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from triggerfish.errors import ConfigError, InvalidEventError

if TYPE_CHECKING:
    from triggerfish.functions.manifest import Manifest

F = TypeVar("F", bound=Callable[..., Any])

_SOURCE_KEYS = ("topic", "schedule", "bucket", "http", "files", "source")


@dataclass
class _Declared:
    """One function as the decorators describe it, in manifest terms."""

    function: Callable[..., Any]  # the user's own
    handler: Callable[..., Any]  # what its module's attribute holds
    name: str
    settings: dict[str, Any] = field(default_factory=dict)
    # Each trigger's mapping, and the keywords given beside it that are not the
    # trigger's own (function settings, or unknown keys reported by ``manifest``).
    triggers: list[tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=list)


class App:
    """A project's functions, triggers, topics, webhooks and brokers, declared in Python.

    Keyword arguments not named by a decorator are function settings (``memory``,
    ``timeout``, ``max_concurrency``, ``environment``, ``permissions``, ``layers``,
    ``logging`` ...: those of ``functions.<name>`` in the manifest) or, on trigger
    decorators, trigger settings (``event_format``, ``start``, ``alias``)."""

    def __init__(self) -> None:
        self._declared: dict[Callable[..., Any], _Declared] = {}
        self._order: list[_Declared] = []
        self._topics: dict[str, dict[str, Any]] = {}
        self._webhooks: dict[str, dict[str, Any]] = {}
        self._brokers: dict[str, dict[str, Any]] = {}

    # -- declarations -------------------------------------------------------------------

    def function(self, *, name: str | None = None, **settings: Any) -> Callable[[F], F]:
        """Declare a function (``name``: its name, the Python name by default) with
        settings; needed only when no trigger decorator gives them."""

        def decorate(function: F) -> F:
            declared = self._declare(function)
            if name is not None:
                declared.name = name
            self._settle(declared, settings)
            return cast(F, declared.handler)

        return decorate

    def on(
        self,
        topic: str,
        *,
        pattern: Mapping[str, Any] | None = None,
        retry: Any = None,
        dead_letter: str | None = None,
        batch: int | None = None,
        name: str | None = None,
        **settings: Any,
    ) -> Callable[[F], F]:
        """Run the function for each event on ``topic`` that matches ``pattern``."""
        options = _given(pattern=pattern, retry=retry, dead_letter=dead_letter, batch=batch)
        return self._trigger({"topic": topic}, name, options, settings)

    def bucket(
        self,
        bucket: str,
        *,
        events: list[str] | None = None,
        prefix: str | None = None,
        suffix: str | None = None,
        pattern: Mapping[str, Any] | None = None,
        retry: Any = None,
        dead_letter: str | None = None,
        batch: int | None = None,
        name: str | None = None,
        **settings: Any,
    ) -> Callable[[F], F]:
        """Run the function for changes of objects in ``bucket`` (``events`` such as
        ``"s3:ObjectCreated:*"``; keys with ``prefix`` and ``suffix``)."""
        source = {"name": bucket, **_given(events=events, prefix=prefix, suffix=suffix)}
        options = _given(pattern=pattern, retry=retry, dead_letter=dead_letter, batch=batch)
        return self._trigger({"bucket": source}, name, options, settings)

    def schedule(
        self,
        expression: str,
        *,
        timezone: str | None = None,
        missed: str | None = None,
        catch_up_limit: int | None = None,
        retry: Any = None,
        dead_letter: str | None = None,
        name: str | None = None,
        **settings: Any,
    ) -> Callable[[F], F]:
        """Run the function on a schedule: ``"rate(5 minutes)"``, ``"cron(0 12 * * ? *)"``
        or a five-field cron line."""
        extra = _given(timezone=timezone, missed=missed, catch_up_limit=catch_up_limit)
        source: Any = {"expression": expression, **extra} if extra else expression
        options = _given(retry=retry, dead_letter=dead_letter)
        return self._trigger({"schedule": source}, name, options, settings)

    def http(
        self,
        route: str,
        *,
        auth: str | None = None,
        secret: str | None = None,
        payload: str | None = None,
        cors: bool | Mapping[str, Any] | None = None,
        name: str | None = None,
        **settings: Any,
    ) -> Callable[[F], F]:
        """Answer an HTTP route, ``"METHOD /path/{param}"``, with the function;
        ``payload``: ``"v2"`` (API Gateway's HTTP API event, the default) or ``"v1"``
        (its REST API event); ``cors``: ``True`` or the route's CORS rules
        (docs/sources.md)."""
        source = {"route": route, **_given(auth=auth, secret=secret, payload=payload, cors=cors)}
        return self._trigger({"http": source}, name, {}, settings)

    def webhook(
        self,
        webhook: str,
        *,
        topic: str | None = None,
        secret: Any = None,
        format: str | None = None,
        header: str | None = None,
        tolerance: Any = None,
        type: str | None = None,
        source: str | None = None,
        pattern: Mapping[str, Any] | None = None,
        retry: Any = None,
        dead_letter: str | None = None,
        batch: int | None = None,
        name: str | None = None,
        **settings: Any,
    ) -> Callable[[F], F]:
        """Declare the webhook ``webhook`` (``POST /v1/webhooks/<webhook>``), which
        publishes what it receives on ``topic`` (the webhook's name by default), and run
        the function for those events."""
        topic = topic or webhook
        config = {"topic": topic}
        config.update(
            _given(
                secret=secret,
                format=format,
                header=header,
                tolerance=tolerance,
                type=type,
                source=source,
            )
        )
        self._put(self._webhooks, "webhooks", webhook, config)
        options = _given(pattern=pattern, retry=retry, dead_letter=dead_letter, batch=batch)
        return self._trigger({"topic": topic}, name, options, settings)

    def source(
        self,
        kind: str,
        url: str,
        *,
        pattern: Mapping[str, Any] | None = None,
        retry: Any = None,
        dead_letter: str | None = None,
        batch: int | None = None,
        start: str | None = None,
        name: str | None = None,
        **options: Any,
    ) -> Callable[[F], F]:
        """Run the function for messages of an external broker (docs/brokers.md):
        ``kind`` and ``url``, and the kind's own options (``stream``, ``subjects`` ...)
        as keywords. Function settings go on ``@app.function`` here."""
        trigger = _given(pattern=pattern, retry=retry, dead_letter=dead_letter, batch=batch)
        trigger.update(_given(start=start))
        return self._trigger({"source": {"kind": kind, "url": url, **options}}, name, trigger, {})

    def topic(self, name: str, *, retention: Any = None) -> None:
        """Declare a topic, with a retention (seconds, or ``"7d"``) if given."""
        self._put(self._topics, "topics", name, _given(retention=retention))

    def broker(self, name: str, *, kind: str, url: str, **options: Any) -> None:
        """Declare a broker that emits and destinations can send to (docs/destinations.md)."""
        self._put(self._brokers, "brokers", name, {"kind": kind, "url": url, **options})

    # -- the manifest -------------------------------------------------------------------

    def manifest(self, root: Path) -> Manifest:
        """The manifest of this App, as if ``root/triggerfish.yaml`` declared it: each
        function's code is the folder its module is imported from, its handler
        ``module.name``. ConfigError for anything the YAML form would be refused for."""
        from triggerfish.functions.manifest import (
            MANIFEST_NAMES,
            check_manifest,
            manifest_from_document,
        )

        root = Path(root)
        origin = self._origin()
        functions: dict[str, dict[str, Any]] = {}
        for declared in self._order:
            if declared.name in functions:
                raise ConfigError(
                    f"{origin}: two functions are named {declared.name!r}; name one otherwise"
                    " with @app.function(name=...)"
                )
            functions[declared.name] = self._function_document(declared, root, origin)
        document: dict[str, Any] = {"functions": functions}
        for key, values in (
            ("topics", self._topics),
            ("webhooks", self._webhooks),
            ("brokers", self._brokers),
        ):
            if values:
                document[key] = values
        file = root / MANIFEST_NAMES[0]
        manifest = manifest_from_document(document, file, origin=origin)
        return check_manifest(manifest, origin=origin)

    def _function_document(self, declared: _Declared, root: Path, origin: str) -> dict[str, Any]:
        from triggerfish.functions.triggers import TriggerConfig

        trigger_keys = set(TriggerConfig.model_fields) - set(_SOURCE_KEYS)
        handler, code_root = _handler_of(declared, origin)
        settings = dict(declared.settings)
        triggers = []
        for trigger, others in declared.triggers:
            trigger = dict(trigger)
            for key, value in others.items():
                if key in trigger_keys:
                    trigger[key] = value
                else:
                    _merge_setting(settings, key, value, declared.name, origin)
            triggers.append(trigger)
        code = Path(os.path.relpath(code_root, root.resolve())).as_posix()
        out: dict[str, Any] = {"handler": handler, "code": code, **settings}
        if triggers:
            out["triggers"] = triggers
        return out

    def _origin(self) -> str:
        """Where messages say the App is: the file of its first function's module."""
        for declared in self._order:
            module = sys.modules.get(declared.function.__module__)
            file = getattr(module, "__file__", None)
            if file:
                return str(file)
        return "App"

    # -- helpers ------------------------------------------------------------------------

    def _declare(self, function: Callable[..., Any]) -> _Declared:
        found = self._declared.get(function)
        if found is not None:
            return found
        if not callable(function):
            raise TypeError(f"an App decorator takes a function, got {function!r}")
        name = getattr(function, "__name__", None)
        if name is None:
            raise TypeError(f"an App decorator takes a function with a name, got {function!r}")
        declared = _Declared(function=function, handler=typed_handler(function), name=name)
        self._declared[function] = declared
        self._declared[declared.handler] = declared
        self._order.append(declared)
        return declared

    def _trigger(
        self,
        source: dict[str, Any],
        name: str | None,
        options: dict[str, Any],
        settings: dict[str, Any],
    ) -> Callable[[F], F]:
        trigger = dict(source)
        if name is not None:
            trigger["name"] = name
        if "batch" in options:
            options["batch_size"] = options.pop("batch")
        trigger.update(options)

        def decorate(function: F) -> F:
            declared = self._declare(function)
            # Decorators run from the bottom up: put each before those below it, so the
            # triggers keep the order they are written in.
            declared.triggers.insert(0, (trigger, settings))
            return cast(F, declared.handler)

        return decorate

    def _settle(self, declared: _Declared, settings: dict[str, Any]) -> None:
        for key, value in settings.items():
            _merge_setting(declared.settings, key, value, declared.name, "App")

    @staticmethod
    def _put(
        table: dict[str, dict[str, Any]], kind: str, name: str, config: dict[str, Any]
    ) -> None:
        if name in table and table[name] != config:
            raise ConfigError(
                f"{kind}.{name} is declared twice with different settings"
                f" ({table[name]!r} and {config!r}); declare it once"
            )
        table[name] = config


def _given(**values: Any) -> dict[str, Any]:
    """The keywords that were given (not None), as a trigger or config mapping."""
    out = {}
    for key, value in values.items():
        if value is None:
            continue
        if hasattr(value, "model_dump") and key == "retry":
            value = value.model_dump(exclude_unset=True)
        out[key] = dict(value) if isinstance(value, Mapping) else value
    return out


def _merge_setting(settings: dict[str, Any], key: str, value: Any, name: str, origin: str) -> None:
    if key in settings and settings[key] != value:
        raise ConfigError(
            f"{origin}: functions.{name}.{key}: set twice with different values"
            f" ({settings[key]!r} and {value!r}); set it once, on @app.function"
        )
    settings[key] = value


def _handler_of(declared: _Declared, origin: str) -> tuple[str, Path]:
    """``module.name`` of a declared function, and the folder its module is imported from
    (above the module's packages)."""
    function = declared.function
    qualname = getattr(function, "__qualname__", declared.function.__name__)
    where = f"{origin}: functions.{declared.name}"
    if "." in qualname:
        raise ConfigError(
            f"{where}: {qualname} is not at the top level of its module; the runtime finds"
            " a handler as 'module.name', so define it at the top level"
        )
    module_name = function.__module__
    module = sys.modules.get(module_name)
    file = getattr(module, "__file__", None)
    if module is None or not file:
        raise ConfigError(f"{where}: the module {module_name!r} of {qualname} has no file")
    if getattr(module, qualname, None) is not declared.handler:
        raise ConfigError(
            f"{where}: {module_name}.{qualname} is not the decorated function; keep the name"
            " the decorators return bound to it"
        )
    path = Path(file).resolve()
    if module_name == "__main__":
        module_name = path.stem
    folder = path.parent
    depth = module_name.count(".") + (1 if path.name == "__init__.py" else 0)
    for _ in range(depth):
        folder = folder.parent
    return f"{module_name}.{qualname}", folder


# -- typed handlers -----------------------------------------------------------------------


def typed_handler(function: F) -> F:
    """``function`` itself, or, when its first parameter is annotated with a pydantic
    model (or ``list[Model]``), a wrapper that gives it the event's data as that model."""
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        return function
    if not parameters or parameters[0].annotation is inspect.Parameter.empty:
        return function
    typed = _Typed(function, parameters[0].name)
    if typed.resolve() is False:
        return function

    if inspect.iscoroutinefunction(function):

        @functools.wraps(function)
        async def handler_async(event: Any, *args: Any, **kwargs: Any) -> Any:
            return await function(typed.convert(event), *args, **kwargs)

        return cast(F, handler_async)

    @functools.wraps(function)
    def handler(event: Any, *args: Any, **kwargs: Any) -> Any:
        return function(typed.convert(event), *args, **kwargs)

    return cast(F, handler)


class _Typed:
    """The model a handler's first parameter asks for, resolved once (at decoration, or
    at the first call when the annotation names a class defined later)."""

    def __init__(self, function: Callable[..., Any], parameter: str) -> None:
        self._function = function
        self._parameter = parameter
        self._resolved = False
        self._model: Any = None  # a BaseModel subclass, or None for no conversion
        self._many = False  # list[Model]
        self._adapter: Any = None

    def resolve(self) -> bool | None:
        """True when typed, False when not, None when it cannot be told yet."""
        if self._resolved:
            return self._model is not None
        try:
            hint = typing.get_type_hints(self._function).get(self._parameter)
        except Exception:
            return None
        self._resolved = True
        pydantic = sys.modules.get("pydantic")
        if pydantic is None or hint is None:
            return False
        if typing.get_origin(hint) is list:
            (hint,) = typing.get_args(hint) or (None,)
            self._many = True
        if isinstance(hint, type) and issubclass(hint, pydantic.BaseModel):
            self._model = hint
            self._adapter = pydantic.TypeAdapter(
                types.GenericAlias(list, (hint,)) if self._many else hint
            )
        return self._model is not None

    def convert(self, event: Any) -> Any:
        if not self.resolve():
            return event
        model = self._model
        if isinstance(event, model) or (
            self._many and isinstance(event, list) and all(isinstance(e, model) for e in event)
        ):
            return event  # called directly, with the model already
        data = [_data(e) for e in event] if self._many and isinstance(event, list) else _data(event)
        pydantic = sys.modules["pydantic"]
        try:
            if isinstance(data, str | bytes):
                return self._adapter.validate_json(data)
            return self._adapter.validate_python(data)
        except pydantic.ValidationError as exc:
            errors = exc.errors(include_url=False)
            details = "; ".join(
                f"{'.'.join(str(part) for part in error['loc']) or '(data)'}: {error['msg']}"
                for error in errors
            )
            wanted = f"list[{model.__name__}]" if self._many else model.__name__
            raise InvalidEventError(
                f"the event's data does not fit {wanted}: {len(errors)} error(s): {details}",
                field=self._parameter,
            ) from None


def _data(event: Any) -> Any:
    """What a typed handler validates: a CloudEvent's ``data``, an HTTP request's body,
    or the payload itself (a direct invoke)."""
    if not isinstance(event, dict):
        return event
    if "specversion" in event and "type" in event and "id" in event:
        if "data" in event:
            return event["data"]
        if "data_base64" in event:
            return base64.b64decode(event["data_base64"])
        return None
    if "requestContext" in event and "body" in event:
        body = event.get("body") or ""
        return base64.b64decode(body) if event.get("isBase64Encoded") else body
    return event
