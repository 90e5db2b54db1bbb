"""Per-function dependencies: a virtual environment per requirement set, built with uv.

A function whose code folder holds ``requirements.txt`` (or, failing that, a
``pyproject.toml`` with ``[project].dependencies``) runs in a virtual environment of its
own. ``Builder.ensure`` makes it at deploy time, before the version is stored, so a
build that fails fails the deploy with uv's own message and the live version stays.

Cache. An environment lives under ``root/<key>``, where the key is the SHA-256 of the
requirement files (``requirements*.txt`` and ``constraints*.txt`` at the top of the code
folder, or the whole ``pyproject.toml``) and of the interpreter (its real path and
version). The same requirements on the same interpreter build nothing: any number of
functions and versions share one environment. A marker file written last says an
environment is complete; a build that fails or is interrupted is removed, so the next
deploy starts afresh. Each build's log is kept as ``root/<key>.log``.

Reaching the runtime. An environment is made without the server's site-packages, so a
function sees only the standard library, its own requirements, and what the bootstrap
needs: ``triggerfish`` (the runtime), ``msgspec``, ``orjson`` and ``typing_extensions``,
and what Lambda's runtimes bundle: ``boto3`` (with ``botocore``, ``s3transfer`` and
their imports) and ``setuptools`` (``pkg_resources``). Those are symbolic links in
``root/_runtime``, which a ``.pth`` file in each environment
appends to ``sys.path`` *after* its own site-packages. Designs rejected:
``--system-site-packages`` leaks every server dependency (FastAPI, SQLAlchemy, ...) into
the function, so code works here and breaks elsewhere, and the installer treats the
server's packages as already satisfied, so a function cannot get its own copy; a ``.pth``
naming the server's whole site-packages has the first problem. The links point at the
running server's modules and are refreshed once per process, so an upgraded server is
what functions import, and each build ends by importing the bootstrap with the new
environment's interpreter: an environment that cannot run the runtime never goes live.

npm packages. A code folder with a ``package.json`` that names dependencies (one of
development dependencies only installs nothing) gets its packages installed under
``root/npm-<key>`` with ``npm ci`` when a lock file (``package-lock.json`` or
``npm-shrinkwrap.json``) is beside it, else ``npm install``; development dependencies
are left out. The key is the SHA-256 of those files and of the Node.js version (native
modules are built for one). The function sees them as ``node_modules`` in its code
folder: a symbolic link to the installed folder, made at deploy and checked again
whenever the code is about to run, so Node.js finds them from CommonJS and ES modules
alike. The same cache, marker, log and failure rules apply as for Python.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from triggerfish.errors import BuildError, NotFoundError

REQUIREMENTS = "requirements.txt"
PYPROJECT = "pyproject.toml"
RUNTIME_MODULES = ("triggerfish", "msgspec", "orjson", "typing_extensions")
#: What Lambda's Python runtimes give every function beside the standard library: the
#: AWS SDK (with what it imports) and setuptools' ``pkg_resources``. A function that
#: pins its own copy in its requirements gets its own: the environment's site-packages
#: come first on ``sys.path``.
BUNDLED_MODULES = (
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "dateutil",
    "urllib3",
    "six",
    "setuptools",
    "pkg_resources",
)
BUILD_FORMAT = b"triggerfish-env-1\n"
READY = ".triggerfish-ready"
RUNTIME_DIR = "_runtime"
KEY_LENGTH = 24  # hex characters: short paths keep script shebangs within limits
LOG_TAIL_LINES = 40
CHECK_CODE = "import triggerfish.runtime.python.bootstrap"
PACKAGE_JSON = "package.json"
NODE_LOCKS = ("package-lock.json", "npm-shrinkwrap.json")
NODE_MODULES = "node_modules"
NPM_FORMAT = b"triggerfish-npm-1\n"
NPM_PREFIX = "npm-"

BuildStatus = Literal["running", "built", "cached", "failed"]


@dataclass(frozen=True, slots=True)
class Requirements:
    """What a code folder asks to install, and the cache key of its environment."""

    file: Path  # requirements.txt, pyproject.toml or package.json
    key: str


@dataclass(frozen=True, slots=True)
class BuildResult:
    key: str
    python: str  # the environment's interpreter
    cached: bool  # True: the environment already existed and nothing was installed
    log_path: Path
    seconds: float


@dataclass(slots=True)
class BuildState:
    """The last build asked for one function, while it runs and after."""

    function: str
    key: str
    status: BuildStatus
    started_at: float
    finished_at: float | None = None
    error: str | None = None


class Builder:
    """Builds and finds the virtual environments of functions under ``root``."""

    def __init__(
        self,
        root: Path,
        *,
        interpreter: str | None = None,
        uv: str | None = None,
        timeout: float = 900.0,
    ) -> None:
        self.root = Path(root).absolute()
        self._interpreter = interpreter or sys.executable
        self._uv = uv
        self._timeout = timeout
        self._identity = _interpreter_identity(self._interpreter)
        self._locks: dict[str, asyncio.Lock] = {}
        self._states: dict[str, BuildState] = {}
        self._runtime_ready = False
        self._node_identity: bytes | None = None

    # -- finding -------------------------------------------------------------------

    def requirements(self, code_dir: Path) -> Requirements | None:
        """The requirements of the code in ``code_dir``; None when it has none."""
        code_dir = Path(code_dir)
        digest = hashlib.sha256(BUILD_FORMAT + self._identity)
        txt = code_dir / REQUIREMENTS
        if txt.is_file():
            patterns = ("requirements*.txt", "constraints*.txt")
            files = sorted({p for pattern in patterns for p in code_dir.glob(pattern)})
            for path in files:
                if path.is_file():
                    _digest_file(digest, path, code_dir)
            return Requirements(txt, digest.hexdigest()[:KEY_LENGTH])
        project = code_dir / PYPROJECT
        if project.is_file() and _has_dependencies(project):
            _digest_file(digest, project, code_dir)
            return Requirements(project, digest.hexdigest()[:KEY_LENGTH])
        return None

    def node_requirements(self, code_dir: Path) -> Requirements | None:
        """The npm packages of the code in ``code_dir`` (its ``package.json``); None
        when it has none."""
        code_dir = Path(code_dir)
        package = code_dir / PACKAGE_JSON
        if not package.is_file() or not _has_npm_dependencies(package):
            return None
        if self._node_identity is None:
            self._node_identity = _node_identity()
        digest = hashlib.sha256(NPM_FORMAT + self._node_identity)
        for name in (PACKAGE_JSON, *NODE_LOCKS):
            if (code_dir / name).is_file():
                _digest_file(digest, code_dir / name, code_dir)
        return Requirements(package, NPM_PREFIX + digest.hexdigest()[:KEY_LENGTH])

    def env_path(self, key: str) -> Path:
        return self.root / key

    def log_path(self, key: str) -> Path:
        return self.root / f"{key}.log"

    def is_built(self, key: str) -> bool:
        return (self.env_path(key) / READY).is_file()

    def python_for(self, code_dir: Path, *, what: str = "this code") -> str | None:
        """The interpreter to run the code in ``code_dir`` with: None for the server's
        own, when the code has no requirements. NotFoundError when it has some but their
        environment is not on this node (``what`` names the code in the message)."""
        packages = self.node_requirements(code_dir)
        if packages is not None:
            if not self.is_built(packages.key):
                raise NotFoundError(
                    f"the npm packages of {what} ({PACKAGE_JSON}) are not installed on this "
                    "node; deploy it again"
                )
            self._link_node_modules(Path(code_dir), packages.key)
        wanted = self.requirements(code_dir)
        if wanted is None:
            return None
        if not self.is_built(wanted.key):
            raise NotFoundError(
                f"the dependencies of {what} ({wanted.file.name}) are not installed on "
                "this node; deploy it again"
            )
        self._ensure_runtime()
        return str(_python(self.env_path(wanted.key)))

    def state(self, function: str) -> BuildState | None:
        """The last build this node ran or reused for ``function`` since it started."""
        return self._states.get(function)

    def read_log(self, key: str, offset: int = 0) -> tuple[str, int]:
        """The build log of ``key`` from byte ``offset``, and the offset after it."""
        try:
            with self.log_path(key).open("rb") as log:
                log.seek(max(0, offset))
                data = log.read()
        except FileNotFoundError:
            return "", offset
        return data.decode("utf-8", "replace"), max(0, offset) + len(data)

    # -- building ------------------------------------------------------------------

    async def ensure(self, code_dir: Path, *, function: str = "") -> BuildResult | None:
        """Make sure the environment of ``code_dir``'s requirements exists, building it
        if needed; None when the code has no requirements. BuildError when the
        installer fails, with its output's last lines. npm packages are installed too
        (first); the result is Python's when the code has both."""
        packages = await asyncio.to_thread(self.node_requirements, code_dir)
        wanted = await asyncio.to_thread(self.requirements, code_dir)
        if wanted is None and packages is None:
            self._states.pop(function, None)
            return None
        result = None
        if packages is not None:
            result = await self._ensure(packages, Path(code_dir), function)
            await asyncio.to_thread(self._link_node_modules, Path(code_dir), packages.key)
        if wanted is not None:
            result = await self._ensure(wanted, Path(code_dir), function)
        return result

    async def _ensure(self, wanted: Requirements, code_dir: Path, function: str) -> BuildResult:
        npm = wanted.key.startswith(NPM_PREFIX)
        state = BuildState(function, wanted.key, "running", time.time())
        self._states[function] = state
        lock = self._locks.setdefault(wanted.key, asyncio.Lock())
        started = time.monotonic()
        try:
            async with lock:
                if not npm:
                    await asyncio.to_thread(self._ensure_runtime)
                cached = self.is_built(wanted.key)
                if not cached and npm:
                    await self._build_npm(wanted, code_dir, function)
                elif not cached:
                    await self._build(wanted, code_dir, function)
        except BaseException as exc:
            state.status, state.finished_at = "failed", time.time()
            state.error = str(exc) or type(exc).__name__
            raise
        state.status, state.finished_at = ("cached" if cached else "built"), time.time()
        return BuildResult(
            key=wanted.key,
            python="" if npm else str(_python(self.env_path(wanted.key))),
            cached=cached,
            log_path=self.log_path(wanted.key),
            seconds=time.monotonic() - started,
        )

    async def _build(self, wanted: Requirements, code_dir: Path, function: str) -> None:
        env = self.env_path(wanted.key)
        uv = self._uv or _find_uv()
        await asyncio.to_thread(shutil.rmtree, env, True)
        self.root.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        what = function or code_dir.name
        with self.log_path(wanted.key).open("w", encoding="utf-8") as log:
            _write(log, f"# environment {wanted.key} for {what}")
            _write(log, f"# requirements: {wanted.file.name}; interpreter: {self._interpreter}")
            try:
                await self._run(
                    log,
                    [uv, "venv", "--no-config", "--python", self._interpreter, str(env)],
                    cwd=self.root,
                    what=f"creating the environment of {what}",
                )
                await asyncio.to_thread(self._link_runtime, env)
                await self._run(
                    log,
                    [
                        uv,
                        "pip",
                        "install",
                        "--no-config",
                        "--python",
                        str(_python(env)),
                        "-r",
                        wanted.file.name,
                    ],
                    cwd=code_dir,
                    what=f"installing the dependencies of {what}",
                )
                _write(log, "# checking that the runtime loads in the environment")
                await self._run(
                    log,
                    [str(_python(env)), "-c", CHECK_CODE],
                    cwd=env,
                    what=f"loading the Triggerfish runtime beside the dependencies of {what}",
                )
            except BaseException as exc:
                _write(log, f"# build failed: {exc if isinstance(exc, BuildError) else repr(exc)}")
                await asyncio.to_thread(shutil.rmtree, env, True)
                raise
            (env / READY).write_text(f"{time.time()}\n")
            _write(log, f"# built in {time.monotonic() - started:.2f} s")

    async def _build_npm(self, wanted: Requirements, code_dir: Path, function: str) -> None:
        env = self.env_path(wanted.key)
        await asyncio.to_thread(shutil.rmtree, env, True)
        started = time.monotonic()
        what = function or code_dir.name
        locks = [name for name in NODE_LOCKS if (code_dir / name).is_file()]
        self.root.mkdir(parents=True, exist_ok=True)
        with self.log_path(wanted.key).open("w", encoding="utf-8") as log:
            _write(log, f"# npm packages {wanted.key} for {what}")
            try:
                npm = shutil.which("npm")
                if npm is None:
                    raise BuildError(
                        f"installing the npm packages of {what} needs npm, which is not on "
                        "this node's PATH: install Node.js and npm (scripts/install-node.sh)"
                    )
                env.mkdir(parents=True)
                for name in (PACKAGE_JSON, *locks):
                    shutil.copyfile(code_dir / name, env / name)
                command = "ci" if locks else "install"
                _write(log, f"# {command}: {'lock file ' + locks[0] if locks else 'no lock file'}")
                await self._run(
                    log,
                    [npm, command, "--omit=dev", "--no-audit", "--no-fund", "--no-update-notifier"],
                    cwd=env,
                    what=f"npm {command} for {what}",
                )
                (env / NODE_MODULES).mkdir(exist_ok=True)  # a package with no dependencies
            except BaseException as exc:
                _write(log, f"# build failed: {exc if isinstance(exc, BuildError) else repr(exc)}")
                await asyncio.to_thread(shutil.rmtree, env, True)
                raise
            (env / READY).write_text(f"{time.time()}\n")
            _write(log, f"# built in {time.monotonic() - started:.2f} s")

    def _link_node_modules(self, code_dir: Path, key: str) -> None:
        """``code_dir/node_modules`` -> the installed packages of ``key``."""
        target = str(self.env_path(key) / NODE_MODULES)
        link = code_dir / NODE_MODULES
        with contextlib.suppress(OSError):
            if os.readlink(link) == target:
                return
        if link.exists() and not link.is_symlink():
            return  # the code brought its own folder
        temporary = code_dir / f".{NODE_MODULES}.{os.getpid()}"
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        try:
            temporary.symlink_to(target, target_is_directory=True)
            os.replace(temporary, link)
        except OSError as exc:
            raise BuildError(f"cannot link the npm packages into {code_dir}: {exc}") from exc

    async def _run(self, log: IO[str], argv: list[str], *, cwd: Path, what: str) -> None:
        """Run one build step, copying its output to the log as it comes."""
        _write(log, "$ " + " ".join(argv))
        environ = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
        environ["NO_COLOR"] = "1"
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                cwd=cwd,
                env=environ,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
        except OSError as exc:
            raise BuildError(f"cannot run {argv[0]}: {exc}") from exc
        tail: list[str] = []
        assert process.stdout is not None
        try:
            async with asyncio.timeout(self._timeout):
                async for raw in process.stdout:
                    line = raw.decode("utf-8", "replace").rstrip("\n")
                    _write(log, line)
                    tail.append(line)
                    del tail[:-LOG_TAIL_LINES]
                code = await process.wait()
        except TimeoutError:
            raise BuildError(f"{what} took longer than {self._timeout:.0f} s; stopped") from None
        finally:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        if code != 0:
            output = "\n".join(line for line in tail if line.strip()) or "(no output)"
            raise BuildError(f"{what} failed (exit status {code}):\n{output}")

    # -- the runtime overlay ---------------------------------------------------------

    def _ensure_runtime(self) -> None:
        """Point ``root/_runtime`` at this server's runtime modules (once per process)."""
        if self._runtime_ready:
            return
        overlay = self.root / RUNTIME_DIR
        overlay.mkdir(parents=True, exist_ok=True)
        for name in (*RUNTIME_MODULES, *BUNDLED_MODULES):
            source = _module_location(name)
            if source is None:
                continue
            link = overlay / source.name
            with contextlib.suppress(OSError):
                if os.readlink(link) == str(source):
                    continue
            temporary = overlay / f".{source.name}.{os.getpid()}"
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
            temporary.symlink_to(source)
            os.replace(temporary, link)
        self._runtime_ready = True

    def _link_runtime(self, env: Path) -> None:
        found = sorted(env.glob("lib/python*/site-packages"))
        if not found:
            raise BuildError(f"the new environment {env} has no site-packages folder")
        (found[0] / "_triggerfish_runtime.pth").write_text(
            str((self.root / RUNTIME_DIR).resolve()) + "\n"
        )


def _python(env: Path) -> Path:
    return env / "bin" / "python"


def _write(log: IO[str], line: str) -> None:
    log.write(line + "\n")
    log.flush()


def _digest_file(digest: hashlib._Hash, path: Path, root: Path) -> None:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BuildError(f"cannot read {path.name}: {exc.strerror}") from exc
    name = path.relative_to(root).as_posix().encode()
    digest.update(len(name).to_bytes(4, "big") + name + len(data).to_bytes(8, "big") + data)


def _has_npm_dependencies(package: Path) -> bool:
    """Whether ``package.json`` asks for packages a function runs with: one that holds
    only development dependencies (the tools of a Serverless Framework service, say)
    needs no install. One that cannot be read is left to npm to report."""
    try:
        document = json.loads(package.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return True
    if not isinstance(document, dict):
        return True
    keys = ("dependencies", "optionalDependencies", "bundleDependencies", "bundledDependencies")
    return any(document.get(key) for key in keys)


def _has_dependencies(project: Path) -> bool:
    try:
        document = tomllib.loads(project.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise BuildError(f"{project.name}: cannot read it: {exc}") from exc
    table = document.get("project")
    if not isinstance(table, dict):
        return False
    return bool(table.get("dependencies")) or "dependencies" in table.get("dynamic", [])


def _interpreter_identity(interpreter: str) -> bytes:
    """What makes an environment fit one interpreter: its real path and, for the running
    one, its exact version (a different build of the same path means new environments)."""
    real = os.path.realpath(interpreter)
    base = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
    if real in (os.path.realpath(sys.executable), base):
        return f"{base}\n{sys.version}\n{sys.platform}\n".encode()
    return f"{real}\n".encode()


def _node_identity() -> bytes:
    """The Node.js that installed packages are for: its path and version."""
    node = shutil.which("node")
    if node is None:
        return b"no node\n"
    try:
        version = subprocess.run(
            [node, "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        version = "unknown"
    return f"{os.path.realpath(node)}\n{version}\n".encode()


def _module_location(name: str) -> Path | None:
    """The package folder or module file that ``import name`` loads here."""
    spec = importlib.util.find_spec(name)
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations))).resolve()
    return Path(spec.origin).resolve() if spec.origin else None


def _find_uv() -> str:
    try:
        from uv import find_uv_bin
    except ImportError as exc:
        raise BuildError("installing a function's dependencies needs uv: pip install uv") from exc
    try:
        return find_uv_bin()
    except FileNotFoundError as exc:
        raise BuildError(f"cannot find the uv program: {exc}") from exc
