"""A Python that every user of the machine can read, for nodes whose sandbox runs
functions as users of their own (a Python under ``/root``, as pyenv installs it, is
not: the sandbox then keeps functions as the node's user, level ``partial``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import pytest

from support.services import in_ci

#: Interpreters of the machine's own packages, readable by everyone.
CANDIDATES = (f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}",)


def readable_python() -> Path:
    """A virtual environment on the machine's own Python of this version, in a folder
    everyone can pass, that sees this environment's packages (Triggerfish included)
    through a ``.pth`` file; removed again by the caller (``shutil.rmtree``)."""
    if os.geteuid() != 0:
        pytest.skip("the sandbox runs functions as users of their own only as root")
    base = next((c for c in CANDIDATES if os.access(c, os.X_OK)), None)
    if base is None:
        message = f"no system Python {sys.version_info.major}.{sys.version_info.minor} found"
        if in_ci():
            pytest.fail(message + " (CI installs python3 from Debian's packages)")
        pytest.skip(message)
    folder = Path(tempfile.mkdtemp(prefix="tf-python-"))
    os.chmod(folder, 0o755)
    try:
        subprocess.run([base, "-m", "venv", "--without-pip", str(folder)], check=True)
        packages = subprocess.run(
            [
                str(folder / "bin" / "python"),
                "-c",
                "import sysconfig; print(sysconfig.get_paths()['purelib'])",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        ours = sysconfig.get_paths()["purelib"]
        (Path(packages) / "triggerfish-tests.pth").write_text(
            f"import site; site.addsitedir({ours!r})\n"
        )
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder / "bin" / "python"
