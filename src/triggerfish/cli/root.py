"""The options of the ``triggerfish`` command itself: ``--profile`` and ``--wide``.

They may be given before the command or anywhere after it (``triggerfish ls --profile
prod``, ``triggerfish --wide invocations``): ``RootGroup`` moves them in front of the
command before parsing, up to a ``--`` that ends the options. ``selection`` holds what
this run of the command chose; the root callback sets it on every run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

GLOBAL_FLAGS = ("--wide",)
GLOBAL_OPTIONS = ("--profile",)  # followed by a value


@dataclass(slots=True)
class Selection:
    profile: str = ""
    wide: bool = False


selection = Selection()


def hoist(args: list[str]) -> list[str]:
    """The arguments with the root options moved to the front, in order."""
    front: list[str] = []
    rest: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            rest += args[index:]
            break
        if arg in GLOBAL_FLAGS or arg.startswith(tuple(f"{o}=" for o in GLOBAL_OPTIONS)):
            front.append(arg)
        elif arg in GLOBAL_OPTIONS:  # with its value (click says so if it is missing)
            front += args[index : index + 2]
            index += 1
        else:
            rest.append(arg)
        index += 1
    return front + rest


FINDING_THE_SERVER = (
    "Commands find their server in this order: TRIGGERFISH_URL (with TRIGGERFISH_TOKEN); "
    "--data-dir (or TRIGGERFISH_DATA_DIR): the local server of that folder; "
    "--profile NAME (or TRIGGERFISH_PROFILE); the current context (triggerfish context use); "
    "else the local server of ./.triggerfish. `triggerfish context show` says which. "
    "Shell completion: triggerfish --install-completion."
)


class RootGroup(TyperGroup):
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist(args))


def root(
    ctx: typer.Context,
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile",
            help="Use this saved context (see `triggerfish context ls`); "
            "TRIGGERFISH_PROFILE sets it too.",
            show_default=False,
        ),
    ] = None,
    wide: Annotated[
        bool,
        typer.Option("--wide", help="Print tables whole, never shortening ids to fit."),
    ] = False,
) -> None:
    """Run your functions when something happens."""
    selection.profile = profile or ""
    selection.wide = wide
    ctx.call_on_close(_forget)  # a run in a test leaves nothing for the next one


def _forget() -> None:
    selection.profile = ""
    selection.wide = False
