"""What ``triggerfish deploy`` says about an AWS template it deploys: the notes of the
translation, what it does not carry out (in red when a function's code will call it),
the refusal under ``--strict``, and the template's ``Outputs`` after the deploy."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from rich.markup import escape

from triggerfish.cli.client import CliError
from triggerfish.cli.output import console, errors
from triggerfish.functions.templates.common import TemplateResult, find_template, load_template


def parse_overrides(values: list[str] | None) -> dict[str, str]:
    """``["A=1 B='x y'", "C=3"]`` (SAM's ``--parameter-overrides`` forms) as a mapping;
    a value with spaces is quoted, or given alone (``"Rate=rate(1 hour)"``)."""
    out: dict[str, str] = {}
    for value in values or []:
        try:
            pairs = shlex.split(value)
        except ValueError as exc:
            raise CliError(f"--parameter-overrides {value!r}: {exc}", 2) from None
        if not all("=" in pair for pair in pairs):
            pairs = [value]  # one NAME=VALUE whose value has spaces
        for pair in pairs:
            key, equals, text = pair.partition("=")
            if not equals or not key:
                raise CliError(
                    f"--parameter-overrides: expected NAME=VALUE, got {pair!r}"
                    " (several: --parameter-overrides 'A=1 B=2')",
                    2,
                )
            out[key.removeprefix("ParameterKey=")] = text
    return out


def read_template(
    path: Path, overrides: list[str] | None, *, strict: bool, quiet: bool
) -> TemplateResult | None:
    """The translated template at ``path``, or None when ``path`` is not a template
    (or is a folder with a triggerfish.yaml). Reports what it must; CliError under
    ``--strict`` when anything is not carried out."""
    from triggerfish.functions.manifest import MANIFEST_NAMES

    if path.is_dir() and any((path / name).is_file() for name in MANIFEST_NAMES):
        file = None
    else:
        file = find_template(path)
    if file is None:
        if overrides:
            raise CliError("--parameter-overrides is for AWS templates (template.yaml)", 2)
        return None
    result = load_template(file, parse_overrides(overrides))
    if not quiet:
        for note in result.notes:
            console.print(f"note: {note}", markup=False, soft_wrap=True)
        if result.unsupported:
            errors.print(f"not carried out ({len(result.unsupported)}):")
        for entry in result.unsupported:
            line = escape(entry.line())
            errors.print(f"  [red]{line}[/red]" if entry.called else f"  {line}", soft_wrap=True)
    if strict and result.unsupported:
        raise CliError(
            f"{file}: --strict: {len(result.unsupported)} thing(s) of the template are not"
            " carried out (listed above); nothing was deployed",
            1,
        )
    return result


def outputs(result: TemplateResult, server_url: str) -> list[dict[str, Any]]:
    return [
        {"name": o.name, "value": o.value, "description": o.description}
        for o in result.outputs_for(server_url)
    ]


def print_outputs(result: TemplateResult, server_url: str) -> None:
    for out in outputs(result, server_url):
        console.print(f"{out['name']}: {out['value']}", markup=False, soft_wrap=True)


def unsupported_json(result: TemplateResult) -> list[dict[str, Any]]:
    return [
        {"where": u.where, "what": u.what, "reason": u.reason, "called": u.called}
        for u in result.unsupported
    ]
