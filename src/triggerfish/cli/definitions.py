"""Definitions of webhooks and brokers given to the CLI, from a file and options.

A file (JSON or YAML) holds either one definition (what the manifest has under
``webhooks.<name>`` or ``brokers.<name>``) or a whole manifest, whose entry of that name
is taken. Options given on the command line replace the file's keys. The result is
checked as ``triggerfish deploy`` checks a manifest, so the messages are the same and
name the key that is wrong.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml

from triggerfish.cli.client import CliError
from triggerfish.functions.brokers import BrokerConfig
from triggerfish.functions.manifest import parse_manifest
from triggerfish.functions.webhooks import WebhookConfig

Section = Literal["webhooks", "brokers"]


def read_definition(file: Path | None, section: Section, name: str) -> dict[str, Any]:
    """The mapping ``file`` defines for ``name`` (empty without a file)."""
    if file is None:
        return {}
    try:
        document = yaml.safe_load(file.read_text(encoding="utf-8"))  # JSON is YAML too
    except OSError as exc:
        raise CliError(f"--file: cannot read {file}: {exc.strerror}", 2) from None
    except yaml.YAMLError as exc:
        raise CliError(f"--file {file}: neither JSON nor YAML: {exc}", 2) from None
    if not isinstance(document, dict):
        raise CliError(f"--file {file}: expected a mapping of settings", 2)
    if isinstance(document.get(section), dict):  # a whole manifest
        entry = document[section].get(name)
        if not isinstance(entry, dict):
            known = ", ".join(map(str, document[section])) or "none"
            raise CliError(f"--file {file}: no {section}.{name} in it ({section}: {known})", 2)
        return entry
    return document


def _checked(section: Section, name: str, settings: dict[str, Any], origin: str) -> Any:
    document = {"functions": {}, section: {name: settings}}
    manifest = parse_manifest(yaml.safe_dump(document), Path(origin))  # ConfigError: exit 2
    return getattr(manifest, section)[name]


def webhook(name: str, settings: dict[str, Any], origin: str) -> WebhookConfig:
    config: WebhookConfig = _checked("webhooks", name, settings, origin)
    return config


def broker(name: str, settings: dict[str, Any], origin: str) -> BrokerConfig:
    config: BrokerConfig = _checked("brokers", name, settings, origin)
    return config


def given(**options: Any) -> dict[str, Any]:
    """The options that were given (not None)."""
    return {key: value for key, value in options.items() if value is not None}
