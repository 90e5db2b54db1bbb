"""Run ``triggerfish`` commands in this process against a server, as a person would in
a shell: the exit code and the message ``triggerfish`` prints for a ``CliError``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from typer.testing import CliRunner

from support.server import Server
from triggerfish.cli.client import CliError
from triggerfish.cli.main import app
from triggerfish.errors import TriggerfishError


@dataclass
class Ran:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        assert self.code == 0, f"exit {self.code}: {self.err}{self.out}"
        return orjson.loads(self.out)


def run(server: Server | None, *args: str, input: str | None = None) -> Ran:
    """``triggerfish ARGS`` talking to ``server``; exit codes as ``triggerfish.cli.main``
    gives them."""
    env = {"TRIGGERFISH_URL": server.url, "TRIGGERFISH_TOKEN": server.token} if server else {}
    result = CliRunner().invoke(app, list(args), env=env, input=input)
    exc = result.exception
    if isinstance(exc, CliError):
        return Ran(exc.code, result.stdout, f"error: {exc}")
    if isinstance(exc, TriggerfishError):
        return Ran(2, result.stdout, f"error: {exc}")
    if exc is not None and not isinstance(exc, SystemExit):
        raise exc
    return Ran(result.exit_code, result.stdout, result.stderr)
