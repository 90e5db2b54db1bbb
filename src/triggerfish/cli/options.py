"""The options every client command of the CLI shares."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
DataDirOpt = Annotated[
    Path | None,
    typer.Option("--data-dir", envvar="TRIGGERFISH_DATA_DIR", help="Where the local token is."),
]
