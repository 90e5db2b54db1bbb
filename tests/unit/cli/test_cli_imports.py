"""The commands that talk to a server (deploy, publish, invoke, ls ...) start without
loading the server's modules: what ``triggerfish deploy`` takes to start is part of
what a user waits for before the first handler runs."""

from __future__ import annotations

import subprocess
import sys

SERVER_MODULES = ("sqlalchemy", "alembic", "uvicorn", "fastapi", "starlette", "aiosqlite")


def test_the_cli_loads_no_server_module_until_a_command_needs_one() -> None:
    script = (
        "import sys\n"
        "import triggerfish.cli.main\n"
        "from triggerfish.functions.project import load_project\n"
        f"server = {SERVER_MODULES!r}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(server)))\n"
        "print(sorted(m for m in sys.modules if m.startswith(('triggerfish.store',"
        " 'triggerfish.node', 'triggerfish.api', 'triggerfish.control'))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    libraries, internal = done.stdout.splitlines()
    assert libraries == "[]", f"the CLI loaded {libraries}"
    assert internal == "[]", f"the CLI loaded {internal}"
