"""``triggerfish init``: start a project in a folder.

It writes a ``triggerfish.yaml`` with one function on a topic (a pattern, a retry policy
and a dead-letter topic), the function's handler, a test that passes as written
(``pytest`` for Python, ``node --test`` for Node.js) and a README with the commands that
come next. It never overwrites a file unless told to (``--force``): the files that are
in the way are named, and nothing is written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from importlib.resources import files
from pathlib import Path
from typing import Annotated

import typer

from triggerfish.cli.client import CliError
from triggerfish.cli.output import console
from triggerfish.functions.fields import NAME_RE, NAME_RULE

#: Exit code when files are in the way (as for a conflict with the server's state).
EXIT_EXISTS = 7


class Runtime(StrEnum):
    python = "python"
    nodejs = "nodejs"


@dataclass(frozen=True)
class Scaffold:
    """What ``init`` writes for one runtime: template file -> path in the project."""

    handler: str
    title: str
    test_command: str
    files: dict[str, str]


SCAFFOLDS = {
    Runtime.python: Scaffold(
        handler="main.handler",
        title="Python",
        test_command="pytest",
        files={
            "triggerfish.yaml.tmpl": "triggerfish.yaml",
            "main.py.tmpl": "{name}/main.py",
            "test_python.py.tmpl": "tests/test_{module}.py",
            "pyproject.toml.tmpl": "pyproject.toml",
            "README.md.tmpl": "README.md",
            "gitignore.tmpl": ".gitignore",
        },
    ),
    Runtime.nodejs: Scaffold(
        handler="index.handler",
        title="Node.js",
        test_command="node --test",
        files={
            "triggerfish.yaml.tmpl": "triggerfish.yaml",
            "index.mjs.tmpl": "{name}/index.mjs",
            "test_nodejs.mjs.tmpl": "test/{name}.test.mjs",
            "README.md.tmpl": "README.md",
            "gitignore.tmpl": ".gitignore",
        },
    ),
}

FALLBACK_NAME = "hello"


def default_name(folder: Path) -> str:
    """A function name made from the project folder's name (``hello`` when that
    leaves nothing usable)."""
    name = re.sub(r"[^a-z0-9_-]+", "-", folder.resolve().name.lower()).strip("-_")[:64]
    return name if NAME_RE.match(name) else FALLBACK_NAME


def render(runtime: Runtime, name: str) -> dict[str, str]:
    """The files of a new project, by their path relative to its folder."""
    scaffold = SCAFFOLDS[runtime]
    values = {
        "name": name,
        "handler": scaffold.handler,
        "runtime": runtime.value,
        "runtime_title": scaffold.title,
        "test_command": scaffold.test_command,
    }
    templates = files("triggerfish.cli") / "templates"
    out = {}
    for template, target in scaffold.files.items():
        text = (templates / template).read_text(encoding="utf-8")
        for key, value in values.items():
            text = text.replace("{{" + key + "}}", value)
        out[target.format(name=name, module=name.replace("-", "_"))] = text
    return out


def write_project(folder: Path, runtime: Runtime, name: str, *, force: bool) -> list[Path]:
    """Write the project's files into ``folder``; CliError naming the files that exist
    already, before writing any, unless ``force``."""
    if not NAME_RE.match(name):
        raise CliError(f"--name {name!r}: expected {NAME_RULE}", 2)
    if folder.exists() and not folder.is_dir():
        raise CliError(f"{folder} is a file; give a folder for the project", 2)
    rendered = render(runtime, name)
    existing = [path for path in rendered if (folder / path).exists()]
    if existing and not force:
        raise CliError(
            f"{folder}: these files exist already: {', '.join(existing)}; nothing was "
            "written. Choose another folder, or pass --force to overwrite them",
            EXIT_EXISTS,
        )
    written = []
    for relative, text in rendered.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def init(
    folder: Annotated[Path, typer.Argument(help="the project's folder (made if missing)")] = Path(
        "."
    ),
    runtime: Annotated[
        Runtime, typer.Option("--runtime", "-r", help="the function's language")
    ] = Runtime.python,
    name: Annotated[
        str | None, typer.Option("--name", help="the function's name (default: the folder's)")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="overwrite files that exist already")
    ] = False,
) -> None:
    """Start a project: a manifest with one function on a topic, its handler, a test."""
    function = name if name is not None else default_name(folder)
    written = write_project(folder, runtime, function, force=force)
    for path in written:
        console.print(f"wrote {path}", markup=False, soft_wrap=True)
    scaffold = SCAFFOLDS[runtime]
    where = "" if folder.resolve() == Path.cwd().resolve() else f"cd {folder} && "
    console.print(
        f"\nnext: {where}{scaffold.test_command}, then `triggerfish up` (in another "
        "terminal) and `triggerfish deploy`; README.md has the rest",
        markup=False,
        soft_wrap=True,
    )
