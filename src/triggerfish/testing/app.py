"""``TestApp``: a project's functions and triggers run in-process, with no server, on a
clock the test moves.

``TestApp(target)`` takes the path of a manifest (``triggerfish.yaml`` or its folder) or
an ``App`` (anything with ``manifest(root) -> Manifest``). Each topic trigger runs as on
a node (``Harness``); Python handlers are imported from each function's code folder
and called in this process. ``handlers`` replaces functions by Python callables (a
stand-in for a Node.js function, or a failing one to test a retry).

Sources (schedules, buckets, brokers, HTTP routes) do not run: publish to the topic of
their trigger instead. Functions run with the test's environment variables, without
the limits of an execution environment.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

from triggerfish.clock import ManualClock
from triggerfish.dispatch.dispatcher import trigger_subscription
from triggerfish.dispatch.policy import Subscription
from triggerfish.errors import ConfigError
from triggerfish.functions.manifest import Manifest, load_manifest
from triggerfish.runtime.base import FunctionSpec, runtime_family
from triggerfish.runtime.python.loader import LoadError
from triggerfish.store.records import TriggerRecord
from triggerfish.testing.executor import Handler, InProcessExecutor, import_handler
from triggerfish.testing.harness import Harness

VERSION = "testing"


class HasManifest(Protocol):
    def manifest(self, root: Path) -> Manifest: ...


class TestApp(Harness):
    """Use as ``with TestApp(app) as t:``; see ``Harness`` for the calls."""

    __test__ = False  # a helper, not a test class, for pytest's collection

    def __init__(
        self,
        target: str | Path | HasManifest,
        *,
        handlers: Mapping[str, Handler] | None = None,
        clock: ManualClock | None = None,
        rand: random.Random | None = None,
        root: Path | None = None,
    ) -> None:
        """``root``: the folder an ``App``'s manifest is relative to (the working
        directory by default)."""
        self.manifest = _manifest(target, root)
        replaced = dict(handlers or {})
        unknown = sorted(set(replaced) - set(self.manifest.functions))
        if unknown:
            known = ", ".join(sorted(self.manifest.functions)) or "none"
            raise ConfigError(
                f"handlers: no function named {', '.join(map(repr, unknown))} in"
                f" {self.manifest.path} (functions: {known})"
            )
        clock = clock or ManualClock()
        functions = {name: _spec(self.manifest, name) for name in self.manifest.functions}
        topics: dict[str, float | None] = {
            name: config.retention for name, config in self.manifest.topics.items()
        }
        super().__init__(
            functions,
            _subscriptions(self.manifest),
            InProcessExecutor(_handlers(replaced), clock=clock),
            topics=topics,
            destinations={
                name: config.destinations for name, config in self.manifest.functions.items()
            },
            clock=clock,
            rand=rand,
        )

    def __enter__(self) -> TestApp:
        self.start()
        return self


def _manifest(target: str | Path | HasManifest, root: Path | None) -> Manifest:
    if isinstance(target, str | Path):
        return load_manifest(Path(target))
    build = getattr(target, "manifest", None)
    if not callable(build):
        raise ConfigError(
            f"TestApp needs the path of a triggerfish.yaml (or its folder) or an App, not"
            f" {type(target).__name__}"
        )
    manifest = build(Path.cwd() if root is None else root)
    if not isinstance(manifest, Manifest):
        raise ConfigError(
            f"{type(target).__name__}.manifest() returned {type(manifest).__name__}, not a Manifest"
        )
    return manifest


def _spec(manifest: Manifest, name: str) -> FunctionSpec:
    config = manifest.functions[name]
    return FunctionSpec(
        function=name,
        version=VERSION,
        code_dir=manifest.code_dir(name).resolve(),
        handler=config.handler,
        runtime=config.runtime,
        memory=config.memory,
        timeout=config.timeout,
        max_concurrency=config.max_concurrency,
    )


def _subscriptions(manifest: Manifest) -> list[Subscription]:
    """The subscriptions a node would run for the manifest's triggers, built as a
    deploy stores them."""
    out: list[Subscription] = []
    for name, config in manifest.functions.items():
        for trigger in config.triggers:
            record = TriggerRecord(
                id=trigger.group_id(name),
                function=name,
                topic=trigger.bus_topic(name),
                qualifier=trigger.alias,
                config=trigger.model_dump(mode="json"),
            )
            subscription = trigger_subscription(record)
            if subscription is not None:
                out.append(subscription)
    return out


def _handlers(replaced: Mapping[str, Handler]) -> Callable[[FunctionSpec], Handler]:
    def find(spec: FunctionSpec) -> Handler:
        if spec.function in replaced:
            return replaced[spec.function]
        family = runtime_family(spec.runtime)
        if family != "python":
            raise LoadError(
                "Runtime.Unsupported",
                f"function {spec.function!r} is a {spec.runtime} function, which TestApp"
                " cannot run in-process; give a Python stand-in in TestApp(...,"
                f" handlers={{{spec.function!r}: ...}})",
                [],
            )
        return import_handler(spec.handler, spec.code_dir)

    return find


def test_app(target: str | Path | HasManifest, **options: Any) -> Iterator[TestApp]:
    """For a pytest fixture: ``yield from test_app(path)`` runs a ``TestApp`` for the
    test and closes it after."""
    with TestApp(target, **options) as app:
        yield app


test_app.__test__ = False  # type: ignore[attr-defined]
