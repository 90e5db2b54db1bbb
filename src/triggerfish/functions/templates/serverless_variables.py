"""The variables of a ``serverless.yml``, resolved as the Serverless Framework (v3)
resolves them: ``${source:address}`` with fallbacks after commas, nested variables, and
the value's own type when a variable is the whole string.

Sources: ``self`` (a key path of the file itself), ``opt`` (command-line options:
``stage``, ``region`` and any ``--parameter-overrides``), ``env`` (the environment of
``triggerfish deploy``), ``sls`` (``stage``), ``param`` (the options, then the file's
``params`` for the stage, then its ``params.default``), ``aws`` (``region``,
``accountId``) and ``file(path)`` (a YAML or JSON file beside the service, with an
optional ``:key.path``). Other sources (``ssm``, ``cf``, ``s3`` ...) cannot be read
here: their fallback is used and the variable is reported, and without a fallback the
file is refused with what to write instead.

A ``${...}`` without a ``source:`` prefix (``${AWS::Region}``, ``${Bucket}`` in an
``Fn::Sub``) is CloudFormation's, and is left as written.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from triggerfish.errors import ConfigError

ACCOUNT_ID = "000000000000"  # the account id Triggerfish answers with, as its S3 and SQS do
# A source, then one colon (two are CloudFormation's ``AWS::Region``).
_SOURCE_RE = re.compile(r"^(file\([^)]*\)|[a-zA-Z][a-zA-Z0-9]*):(?!:)(.*)$", re.S)
_NUMBER_RE = re.compile(r"^-?\d+(\.\d+)?$")
_MAX_DEPTH = 32


@dataclass(slots=True)
class Variables:
    """The resolver of one file: ``document`` as read, the ``options`` given to the
    deploy, the ``environment``; ``unreadable`` collects the variables whose source
    Triggerfish cannot read (their fallback was used)."""

    document: Mapping[str, Any]
    folder: Path
    options: Mapping[str, str]
    environment: Mapping[str, str]
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (key path, variable)

    @property
    def stage(self) -> str:
        return self.options.get("stage") or self._plain("provider", "stage") or "dev"

    @property
    def region(self) -> str:
        return self.options.get("region") or self._plain("provider", "region") or "us-east-1"

    def _plain(self, *keys: str) -> str | None:
        """A setting such as ``provider.stage``, resolved, if it is a string."""
        value = self.resolve(_get(self.document, keys), ".".join(keys))
        return value if isinstance(value, str) and value else None

    def resolve(self, value: Any, where: str, depth: int = 0) -> Any:
        """``value`` with every variable in it resolved; ``where`` is its key path."""
        if depth > _MAX_DEPTH:
            raise ConfigError(f"{where}: the variables refer to each other in a circle")
        if isinstance(value, str):
            return self._string(value, where, depth)
        if isinstance(value, dict):
            return {k: self.resolve(v, f"{where}.{k}", depth) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v, f"{where}[{i}]", depth) for i, v in enumerate(value)]
        return value

    def _string(self, text: str, where: str, depth: int) -> Any:
        spans = list(_variables(text))
        if not spans:
            return text
        if len(spans) == 1 and spans[0][0] == 0 and spans[0][1] == len(text):
            return self._variable(text[2:-1], where, depth)
        out, last = [], 0
        for start, end in spans:
            value = self._variable(text[start + 2 : end - 1], where, depth)
            if isinstance(value, dict | list):
                raise ConfigError(
                    f"{where}: {text[start:end]} is a mapping or a list and cannot be part of"
                    " a string; use it as the whole value"
                )
            out += [text[last:start], _text(value)]
            last = end
        out.append(text[last:])
        return "".join(out)

    def _variable(self, inner: str, where: str, depth: int) -> Any:
        if not _SOURCE_RE.match(inner.strip()) and not inner.strip().startswith("${"):
            return "${" + inner + "}"  # CloudFormation's, for Fn::Sub
        alternatives = _split(inner)
        for index, alternative in enumerate(alternatives):
            last = index == len(alternatives) - 1
            value = self._one(alternative.strip(), where, depth, has_fallback=not last)
            if value is not None:
                return value
        raise ConfigError(f"{where}: cannot resolve ${{{inner}}}: {_hint(alternatives[0].strip())}")

    def _one(self, text: str, where: str, depth: int, *, has_fallback: bool) -> Any:
        if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
            return text[1:-1]
        if text.startswith("${") and text.endswith("}"):
            return self._string(text, where, depth + 1)
        if _NUMBER_RE.match(text):
            return float(text) if "." in text else int(text)
        if text in ("true", "false"):
            return text == "true"
        if text == "null":
            return None
        match = _SOURCE_RE.match(text)
        if match is None:
            return text  # a bare word as a fallback: a string, as Serverless v2 read it
        source, address = match.group(1), match.group(2).strip()
        reader = self._readers().get(source)
        if reader is not None:
            found = reader(address)
            return self.resolve(found, where, depth + 1) if found is not None else None
        if source.startswith("file("):
            return self.resolve(self._file(source[5:-1].strip(), address, where), where, depth + 1)
        if has_fallback:
            self.unreadable.append((where, "${" + text + "}"))
            return None
        raise ConfigError(
            f"{where}: cannot resolve ${{{text}}}: Triggerfish cannot read the {source!r}"
            " source; give a fallback (${" + text + ", 'value'}) or use ${param:NAME} and"
            " pass --parameter-overrides NAME=value"
        )

    def _readers(self) -> dict[str, Callable[[str], Any]]:
        return {
            "self": lambda address: _get(self.document, _path(address)),
            "opt": lambda address: self.options.get(address),
            "env": lambda address: self.environment.get(address),
            "sls": lambda address: self.stage if address == "stage" else None,
            "param": self._param,
            "aws": lambda address: {"region": self.region, "accountId": ACCOUNT_ID}.get(address),
        }

    def _param(self, name: str) -> Any:
        if name in self.options:
            return self.options[name]
        params = self.document.get("params")
        if not isinstance(params, dict):
            return None
        for stage in (self.stage, "default"):
            values = params.get(stage)
            if isinstance(values, dict) and name in values:
                return values[name]
        return None

    def _file(self, name: str, address: str, where: str) -> Any:
        name = name.strip("'\"")
        path = (self.folder / name).resolve()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{where}: ${{file({name})}}: cannot read {path}: {exc}") from None
        try:
            data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (ValueError, yaml.YAMLError) as exc:
            raise ConfigError(f"{where}: ${{file({name})}}: {path} is not valid: {exc}") from None
        return _get(data, _path(address)) if address else data


def _variables(text: str) -> list[tuple[int, int]]:
    """The (start, end) of each outermost ``${...}`` in ``text``."""
    spans: list[tuple[int, int]] = []
    index = 0
    while (start := text.find("${", index)) != -1:
        depth, cursor, quote = 0, start, ""
        while cursor < len(text):
            char = text[cursor]
            if quote:
                quote = "" if char == quote else quote
            elif char in "'\"" and depth:
                quote = char
            elif text.startswith("${", cursor):
                depth += 1
                cursor += 1
            elif char == "}":
                depth -= 1
                if depth == 0:
                    break
            cursor += 1
        if depth:
            return spans  # an unclosed ${ is left as text
        spans.append((start, cursor + 1))
        index = cursor + 1
    return spans


def _split(inner: str) -> list[str]:
    """The alternatives of a variable: its text split at the commas outside quotes and
    nested variables."""
    parts, depth, quote, current = [], 0, "", ""
    for index, char in enumerate(inner):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif inner.startswith("${", index):
            depth += 1
        elif char == "}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        current += char
    parts.append(current)
    return parts


def _path(address: str) -> tuple[str, ...]:
    return tuple(part for part in address.split(".") if part)


def _get(data: Any, keys: tuple[str, ...]) -> Any:
    for key in keys:
        if isinstance(data, dict):
            data = data.get(key)
        elif isinstance(data, list) and key.isdigit() and int(key) < len(data):
            data = data[int(key)]
        else:
            return None
    return data


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _hint(first: str) -> str:
    source = first.split(":", 1)[0]
    if source == "opt":
        return "no such option was given; pass it (--stage, --region or --parameter-overrides)"
    if source == "env":
        return "the variable is not set in the environment of triggerfish deploy"
    if source == "param":
        return "no such parameter: pass --parameter-overrides NAME=value or declare it in params"
    return "the value is not there; give a fallback after a comma: ${" + first + ", 'value'}"
