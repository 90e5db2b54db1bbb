"""``triggerfish pattern``: try event patterns on sample events.

``triggerfish pattern test PATTERN EVENT`` takes each argument as JSON text, or as
``@path`` to read a file, and tells whether the event matches. Exit codes: 0 the
event matches, 1 it does not, 2 the pattern (or the event) is not valid.
``--json`` prints one JSON object instead of text, for scripts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, NoReturn

import orjson
import typer
from rich.console import Console
from rich.markup import escape

from triggerfish.errors import PatternError
from triggerfish.patterns import compile

app = typer.Typer(help="Write and check event patterns (EventBridge syntax).", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """Write and check event patterns (EventBridge syntax)."""


EXIT_MATCH = 0
EXIT_NO_MATCH = 1
EXIT_INVALID = 2


class _InputError(Exception):
    """An argument could not be read or parsed."""


def _read(argument: str, what: str) -> str:
    if not argument.startswith("@"):
        return argument
    path = Path(argument[1:])
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise _InputError(f"cannot read the {what} file {path}: {exc.strerror}") from None


def _emit(as_json: bool, payload: dict[str, Any], text: str, code: int) -> NoReturn:
    if as_json:
        typer.echo(orjson.dumps(payload).decode())
    else:
        Console(stderr=code == EXIT_INVALID, highlight=False).print(text)
    raise typer.Exit(code)


@app.command("test")
def run_test(
    pattern: Annotated[str, typer.Argument(help="The pattern: JSON text, or @file.")],
    event: Annotated[str, typer.Argument(help="The event: JSON text, or @file.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object instead of text.")
    ] = False,
) -> None:
    """Tell whether EVENT matches PATTERN (exit 0 match, 1 no match, 2 invalid)."""
    try:
        compiled = compile(_read(pattern, "pattern"))
    except (PatternError, _InputError) as exc:
        field = getattr(exc, "field", None)
        _emit(
            as_json,
            {"valid": False, "error": str(exc), "field": field},
            f"[bold red]invalid pattern[/]: {escape(str(exc))}",
            EXIT_INVALID,
        )
    try:
        parsed = orjson.loads(_read(event, "event"))
    except orjson.JSONDecodeError as exc:
        message = f"the event is not valid JSON: {exc}"
        _emit(
            as_json,
            {"valid": False, "error": message, "field": None},
            f"[bold red]invalid event[/]: {escape(message)}",
            EXIT_INVALID,
        )
    except _InputError as exc:
        _emit(
            as_json,
            {"valid": False, "error": str(exc), "field": None},
            f"[bold red]invalid event[/]: {escape(str(exc))}",
            EXIT_INVALID,
        )
    if not isinstance(parsed, dict):
        message = "the event must be a JSON object"
        _emit(
            as_json,
            {"valid": False, "error": message, "field": None},
            f"[bold red]invalid event[/]: {message}",
            EXIT_INVALID,
        )
    if compiled.matches(parsed):
        _emit(as_json, {"valid": True, "match": True}, "[bold green]match[/]", EXIT_MATCH)
    _emit(as_json, {"valid": True, "match": False}, "[yellow]no match[/]", EXIT_NO_MATCH)
