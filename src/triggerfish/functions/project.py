"""What ``triggerfish deploy`` and ``triggerfish dev`` are pointed at, read as one
``Manifest``.

``load_project(target)`` takes any of:

- a ``triggerfish.yaml`` (or ``.yml``) file;
- a folder: its ``triggerfish.yaml``, or else the ``App`` in its ``app.py``;
- a Python file, ``app.py``, or ``app.py:attribute`` to pick one of several Apps;
- ``module:attribute``, a module importable from the current folder;
- an AWS template read as it is: ``template.yaml`` of AWS SAM, or a folder holding one
  and no ``triggerfish.yaml`` (``triggerfish.functions.templates``).

A manifest may name an App too (``app: app.py`` or ``app: module:attribute``, relative
to the manifest): the project is then the manifest's functions, topics, webhooks and
brokers plus the App's. A function declared in both is refused; a topic, webhook or
broker declared in both must have the same settings.

Reading an App imports its module, here, in the process that deploys: its top-level
imports must be importable here too. Every import reads the files again (modules loaded
earlier from the project's folder are forgotten first), so a changed file is seen.
"""

from __future__ import annotations

import importlib
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

from triggerfish.app import App
from triggerfish.errors import ConfigError
from triggerfish.functions.manifest import (
    MANIFEST_NAMES,
    Manifest,
    load_manifest,
    manifest_from_document,
)
from triggerfish.functions.templates.common import find_template, load_template

APP_FILE = "app.py"


def load_project(target: str | Path) -> Manifest:
    """The manifest of the project at ``target`` (see the module's docstring);
    ConfigError saying what is wrong and how to fix it."""
    text = str(target)
    path = Path(text)
    # An AWS template as it is (docs/migrate.md), when no triggerfish.yaml is there.
    has_manifest = path.is_dir() and any((path / n).is_file() for n in MANIFEST_NAMES)
    if not has_manifest and (template := find_template(path)) is not None:
        return load_template(template).manifest
    if path.is_dir():
        if any((path / name).is_file() for name in MANIFEST_NAMES):
            return _with_app(load_manifest(path))
        if (path / APP_FILE).is_file():
            return load_app(APP_FILE, path).manifest(path)
        raise ConfigError(
            f"{path}: no {MANIFEST_NAMES[0]} and no {APP_FILE} in this folder; write one of"
            " them (docs/guide.md, docs/sdk.md)"
        )
    if path.suffix == ".py" or (":" in text and not path.exists()):
        app = load_app(text, Path("."))
        return app.manifest(app_root(text, Path(".")))
    return _with_app(load_manifest(path))


def load_app(spec: str, base: Path) -> App:
    """The App named by ``spec`` (``file.py``, ``file.py:attr`` or ``module:attr``),
    with file paths and the module search relative to ``base``."""
    where, attr = _split(spec)
    if where.endswith(".py"):
        file = base / where
        if not file.is_file():
            raise ConfigError(f"{file}: no such file")
        module = _import(file.stem, file.parent, str(file))
        label = str(file)
    else:
        module = _import(where, base, where)
        label = where
    return _find_app(module, attr, label)


def app_root(spec: str, base: Path) -> Path:
    """The folder an App's code paths are relative to: its file's folder, or for
    ``module:attr`` the folder the module is imported from."""
    where, _ = _split(spec)
    if where.endswith(".py"):
        return (base / where).parent
    return base


def _split(spec: str) -> tuple[str, str | None]:
    where, colon, attr = spec.rpartition(":")
    if not colon:
        return spec, None
    if not where or not attr.isidentifier():
        raise ConfigError(
            f"{spec!r}: expected a Python file (app.py), file.py:attribute or"
            " module:attribute naming an App"
        )
    return where, attr


def _with_app(manifest: Manifest) -> Manifest:
    """``manifest`` plus the App it names in ``app:``, if any."""
    if manifest.app is None:
        return manifest
    origin = f"{manifest.path}: app"
    extra = load_app(manifest.app, manifest.root).manifest(manifest.root)
    if clash := sorted(set(manifest.functions) & set(extra.functions)):
        raise ConfigError(
            f"{origin}: the function {clash[0]!r} is declared both in {manifest.path.name}"
            f" and by the App in {manifest.app}; rename or remove one"
        )
    document: dict[str, Any] = {"app": manifest.app}
    for key in ("topics", "webhooks", "brokers", "functions"):
        mine, theirs = getattr(manifest, key), getattr(extra, key)
        for name in set(mine) & set(theirs):
            if mine[name] != theirs[name]:
                raise ConfigError(
                    f"{origin}: {key}.{name} is declared both in {manifest.path.name} and by"
                    f" the App in {manifest.app}, with different settings; declare it once"
                )
        document[key] = {**mine, **theirs}
    return manifest_from_document(document, manifest.path, origin=str(manifest.path))


def _find_app(module: ModuleType, attr: str | None, label: str) -> App:
    if attr is not None:
        found = getattr(module, attr, None)
        if not isinstance(found, App):
            what = "nothing" if found is None else f"a {type(found).__name__}"
            raise ConfigError(f"{label}: {attr} is {what}, not an App")
        return found
    apps: dict[str, App] = {}
    for name, value in vars(module).items():
        if isinstance(value, App) and value not in apps.values():
            apps[name] = value
    if not apps:
        raise ConfigError(
            f"{label}: no App in this module; declare one (app = App()) and its functions"
            " with its decorators (docs/sdk.md)"
        )
    if len(apps) > 1:
        names = ", ".join(sorted(apps))
        raise ConfigError(
            f"{label}: several Apps ({names}); name the one to deploy: {label}:{min(apps)}"
        )
    return next(iter(apps.values()))


def _import(name: str, folder: Path, label: str) -> ModuleType:
    """Import module ``name`` afresh from ``folder``."""
    folder = folder.resolve()
    _forget(folder, name)
    if str(folder) in sys.path:
        sys.path.remove(str(folder))
    sys.path.insert(0, str(folder))
    importlib.invalidate_caches()
    writes = sys.dont_write_bytecode
    # No bytecode cache: a file saved twice within its timestamp's resolution would
    # otherwise be read from the first save's cache.
    sys.dont_write_bytecode = True
    try:
        return importlib.import_module(name)
    except SyntaxError as exc:
        detail = "".join(traceback.format_exception_only(exc)).rstrip()
        raise ConfigError(f"{label}: cannot import it, a syntax error:\n{detail}") from None
    except (Exception, SystemExit) as exc:
        raise ConfigError(
            f"{label}: importing it failed (Triggerfish imports it to read its App; its"
            f" imports must be installed where triggerfish runs):\n{_user_traceback(exc)}"
        ) from None
    finally:
        sys.dont_write_bytecode = writes


def _forget(folder: Path, name: str) -> None:
    """Drop the modules imported from ``folder`` before (and a module ``name`` imported
    from elsewhere), so the next import reads the files as they are now."""
    top = name.split(".")[0]
    for module_name, module in list(sys.modules.items()):
        if module_name in ("__main__", "triggerfish") or module_name.startswith("triggerfish."):
            continue
        file = getattr(module, "__file__", None)
        same_name = module_name == top or module_name.startswith(top + ".")
        inside = bool(file) and "site-packages" not in str(file)
        if same_name or (inside and Path(str(file)).resolve().is_relative_to(folder)):
            del sys.modules[module_name]


def _user_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` from the user's first frame on."""
    frames = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if not frame.filename.startswith("<frozen") and frame.filename != __file__
    ]
    lines = ["Traceback (most recent call last):\n", *traceback.format_list(frames)]
    lines += traceback.format_exception_only(exc)
    return "".join(lines).rstrip()
