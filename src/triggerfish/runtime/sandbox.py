"""The sandbox of execution environments: a user of its own per function, a cgroup of
its own per environment.

Where the node runs as root and may create cgroups (v2, or v1 with the ``memory`` and
``pids`` controllers), every environment is confined (level ``full``):

- it runs as the function's own unprivileged user (uid and gid from
  ``uid_base`` up, allocated once per function and kept in ``identities.json`` of the
  node's work folder), with no supplementary groups. It therefore cannot read the
  node's data directory (mode 0711: passage only; databases, keys, tokens, artifacts,
  buckets under 0700 folders or 0600 files), another function's code (each function
  runs from a copy of its own, readable by its group only), another function's scratch
  folder, or ``/proc/<pid>/environ`` of the node or of other functions' processes;
- it lives in a cgroup of its own: ``memory`` limits the whole process tree to the
  function's memory size (swap included where the kernel accounts it), ``pids`` the
  number of processes and threads (``max_processes``), and the CPU weight follows the
  memory size as Lambda's CPU share does. A timeout, a recycle or a stop kills every
  process of the cgroup, whatever session or process group it made for itself;
- an out-of-memory kill inside the cgroup (of the handler or of a child it started)
  makes the invocation end as ``oom``.

Where the node is not root, users of their own are out of reach; the kernel still
lets any process fence itself with Landlock (``triggerfish.runtime.landlock``), and every
environment does before it runs the function's code (level ``partial``): it reads the
system's folders, the Python runtime and its own code, writes its own scratch folder,
``/tmp`` and ``/dev``, and nothing else of the machine; it cannot signal or trace the
node, the fork servers or other functions' environments, nor read their ``/proc``
details. What stays open, said in the level: functions share the node's user, so what
one leaves in ``/tmp`` another may read; cgroups only where the node may create them
(a delegated cgroup v2 subtree).

The network stays open: functions call APIs. Without root or without cgroups the
sandbox says what it cannot do (``partial (...)`` or ``none (...)``), and ``triggerfish
up`` prints it at start; ``GET /v1/nodes`` shows it.

Child side: ``confine`` runs in the new process before any of the function's code (a
fork server's child, or a fresh interpreter before ``exec``): it joins the cgroups,
drops to the function's user, then enters its Landlock fence. Programs that are not
Python (Node.js, custom runtimes) are fenced by ``landlock.py`` run as a program
before their own ``exec`` (``fenced_argv``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import hashlib
import json
import os
import shutil
import signal
import stat as stat_module
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from triggerfish.runtime import landlock
from triggerfish.runtime.base import FunctionSpec
from triggerfish.runtime.protocol import Confinement

#: Where a host's cgroup hierarchies are mounted.
CGROUP_ROOT = Path("/sys/fs/cgroup")
#: Controllers of a v1 host that the sandbox uses (``cpu`` is optional).
V1_CONTROLLERS = ("memory", "pids", "cpu")
#: Lambda gives a function one vCPU at 1,769 MB, in proportion below.
FULL_CPU_MB = 1769
#: Headroom above the memory size for what the kernel charges the environment beyond
#: its processes' own pages (page tables, socket buffers, its output file).
MEMORY_SLACK_MB = 16
#: A killed cgroup can be removed once the kernel has reaped its processes: retries.
REMOVE_ATTEMPTS = 50
REMOVE_PAUSE = 0.002


def confine(confinement: Confinement) -> None:
    """In the new process: join the cgroups, drop every supplementary group, then the
    group and the user, then enter the Landlock fence where there is one. Raises
    OSError when any step fails: the process must not run the function unconfined."""
    _join(confinement.procs, os.getpid())
    if os.getuid() == 0:
        os.setgroups([])
        os.setgid(confinement.gid)
        os.setuid(confinement.uid)
    if confinement.read or confinement.write:
        landlock.restrict(confinement.read, confinement.write)


def fenced_argv(argv: list[str], confinement: Confinement | None) -> list[str]:
    """``argv``, run behind ``confinement``'s Landlock fence when it has one: through
    ``landlock.py`` as a program, for processes that cannot fence themselves."""
    if confinement is None or not (confinement.read or confinement.write):
        return argv
    rules = json.dumps({"read": confinement.read, "write": confinement.write})
    return [sys.executable, "-I", "-S", landlock.__file__, rules, "--", *argv]


def _join(procs: list[str], pid: int) -> None:
    """Move ``pid`` into the cgroups whose ``cgroup.procs`` files are ``procs``."""
    for path in procs:
        with open(path, "w") as join:
            join.write(str(pid))


@dataclass(frozen=True, slots=True)
class Level:
    """``full``, ``partial (what is missing)`` or ``none (why)``."""

    name: str
    missing: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.name if not self.missing else f"{self.name} ({'; '.join(self.missing)})"


@dataclass(slots=True)
class Cell:
    """One environment's cgroups (one folder per hierarchy) and identity."""

    confinement: Confinement
    folders: list[Path]
    code_dir: Path | None
    memory_events: Path | None
    oom_seen: int = 0

    def adopt(self, pid: int) -> None:
        """Move ``pid`` (a process the node started as the function's user, such as a
        pre-started Node.js) into the cell, before it runs any of the function's code."""
        _join(self.confinement.procs, pid)

    def runs(self, spec: FunctionSpec, env: dict[str, str]) -> tuple[FunctionSpec, dict[str, str]]:
        """``spec`` and its environment variables as they run in this cell: from the
        function's own copy of its code, where the cell has one (``LAMBDA_TASK_ROOT``,
        the layers' folder and the paths beneath them follow the copy)."""
        if self.code_dir is None:
            return spec, env
        original, copy = str(spec.code_dir), str(self.code_dir)
        rebased: dict[str, str] = {}
        for name, value in env.items():
            if original in value:
                value = os.pathsep.join(
                    copy + entry[len(original) :]
                    if entry == original or entry.startswith(original + os.sep)
                    else entry
                    for entry in value.split(os.pathsep)
                )
            rebased[name] = value
        return dataclasses.replace(spec, code_dir=self.code_dir), rebased

    def pids(self) -> set[int]:
        found: set[int] = set()
        for folder in self.folders:
            with contextlib.suppress(OSError):
                found.update(int(line) for line in (folder / "cgroup.procs").read_text().split())
        return found

    def kill(self) -> None:
        """SIGKILL every process of the cell."""
        for folder in self.folders:
            kill_file = folder / "cgroup.kill"
            if kill_file.exists():
                with contextlib.suppress(OSError):
                    kill_file.write_text("1")
                    return
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    def oom_kills(self) -> int:
        """How many processes the kernel killed in the cell for lack of memory."""
        if self.memory_events is None:
            return 0
        with contextlib.suppress(OSError, ValueError):
            for line in self.memory_events.read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        return 0

    def took_oom_kill(self) -> bool:
        """Whether an out-of-memory kill happened since the last question."""
        kills = self.oom_kills()
        fresh = kills > self.oom_seen
        self.oom_seen = kills
        return fresh

    def remove(self) -> bool:
        """Kill what is left and remove the folders; False when some stay (busy).
        Blocks while the kernel empties the killed cgroups: for start-up and error
        paths; the event loop uses ``discard``."""
        for _ in range(REMOVE_ATTEMPTS):
            if self._try_remove():
                return True
            time.sleep(REMOVE_PAUSE)
        return False

    async def discard(self) -> bool:
        """``remove`` without holding the event loop while the kernel empties the
        killed cgroups (some milliseconds after a kill)."""
        for _ in range(REMOVE_ATTEMPTS):
            if self._try_remove():
                return True
            await asyncio.sleep(REMOVE_PAUSE)
        return False

    def _try_remove(self) -> bool:
        self.kill()
        removed = True
        for folder in self.folders:
            try:
                folder.rmdir()
            except FileNotFoundError:
                pass
            except OSError as exc:
                if exc.errno != errno.EBUSY:
                    raise
                removed = False
        return removed


@dataclass(slots=True)
class _Hierarchy:
    name: str  # "memory", "pids", "cpu", or "unified" (v2)
    base: Path  # this node's folder in it


@dataclass(slots=True)
class Sandbox:
    """A node's sandbox: detects what the machine allows, allocates the functions'
    users and makes each environment's cell.

    ``root`` holds what the functions' users must reach (their scratch folders, their
    copies of code, built dependency environments) and the table of identities; it is
    ``data_dir/sandbox`` when other users can pass through the data directory's
    parents, else ``/var/lib/triggerfish/sandbox/<node tag>``, or ``root`` when given.
    ``shared``: folders every function may read (such as the AWS SDK bundle of Node.js
    functions), opened in the Landlock fence."""

    data_dir: Path
    node_tag: str
    root_dir: Path | None = None
    max_processes: int = 256
    uid_base: int = 2_000_000
    shared: tuple[Path, ...] = ()
    level: Level = field(default_factory=lambda: Level("none", ("not started",)))
    root: Path = Path()
    _hierarchies: list[_Hierarchy] = field(default_factory=list)
    _identities: dict[str, int] = field(default_factory=dict)
    _users: bool = False
    #: Landlock's folders for every environment (read, write); None: no fence.
    _fence: tuple[list[str], list[str]] | None = None
    _counter: int = 0
    _code_ready: set[tuple[str, str]] = field(default_factory=set)

    @property
    def uses_users(self) -> bool:
        """Whether functions run as users of their own."""
        return self._users

    @property
    def fences(self) -> bool:
        """Whether environments fence themselves with Landlock (a node that is not
        root): processes started ahead of their function cannot serve it."""
        return self._fence is not None

    def start(self, *, enabled: bool = True) -> Level:
        """Find what the machine allows; idempotent. Never raises: what cannot be done
        is said in the level."""
        if self.root != Path():
            return self.level
        self.root = self.data_dir / "sandbox"
        if not enabled:
            self.level = Level("none", ("turned off by the sandbox setting",))
            return self.level
        if os.geteuid() != 0:
            self.level = self._start_unprivileged()
            return self.level
        missing: list[str] = []
        blocked = unreachable_runtime()
        if blocked is not None:
            missing.append(
                f"{blocked} cannot be read by other users, so functions run as the node's "
                "user (install Triggerfish with a Python that other users can read, such "
                "as the system's python3)"
            )
        else:
            self.root = self.root_dir or (
                self.root
                if reachable(self.data_dir)
                else Path("/var/lib/triggerfish/sandbox") / self.node_tag
            )
            _passage(self.root, 0o711)
            if not reachable(self.root):
                missing.append(
                    f"{self.root} cannot be reached by other users (set sandbox_dir to a "
                    "folder they can pass through)"
                )
        self._users = not missing
        if self._users:
            self._load_identities()
        try:
            self._hierarchies = self._make_hierarchies(missing)
        except OSError as exc:
            self._hierarchies = []
            missing.append(f"cgroups cannot be created: {exc.strerror or exc}")
        names = {h.name for h in self._hierarchies}
        if self._hierarchies and not ({"unified"} & names or {"memory", "pids"} <= names):
            self._hierarchies = []
        if not self._hierarchies:
            missing.append(
                "no memory and pids cgroups: memory and process limits cover the handler's "
                "own process only, and a timeout kills its process group only"
            )
        self._remove_leftovers()
        self.level = Level("partial" if missing else "full", tuple(missing))
        return self.level

    def _start_unprivileged(self) -> Level:
        """A node that is not root: a Landlock fence per environment, cgroups where the
        node may create them."""
        version = landlock.abi()
        if version < 1:
            return Level(
                "none",
                (
                    "the node does not run as root and the kernel offers no Landlock: "
                    "functions run as the node's user and can read what it can",
                ),
            )
        self.root = self.root_dir or self.root
        read, write, closed = _fence_folders(
            (self.data_dir, self.root), envs=self.data_dir / "envs", shared=self.shared
        )
        self._fence = (read, write)
        shared = "/tmp and /dev/shm" if "/tmp" in write else "/dev/shm"
        missing = [
            "the node is not root: functions share its user, fenced by Landlock "
            f"(ABI {version}) from the data directory, other functions' files and the "
            f"node's processes; what one function leaves in {shared} another can read"
        ]
        missing.extend(closed)
        if version < 6:
            missing.append(
                "Landlock before ABI 6 cannot stop a function from signalling the node's "
                "processes (Linux 6.12 can)"
            )
        try:
            self._hierarchies = self._make_hierarchies(missing)
        except OSError as exc:
            self._hierarchies = []
            missing.append(
                f"cgroups cannot be created ({exc.strerror or exc}; delegate a cgroup v2 "
                "subtree to the node's user): memory and process limits cover the "
                "handler's own process only, and a timeout kills its process group only"
            )
        else:
            self._remove_leftovers()
        return Level("partial", tuple(missing))

    def close(self) -> None:
        """Remove this node's cgroup folders (its environments are gone by now)."""
        self._remove_leftovers()
        for hierarchy in self._hierarchies:
            with contextlib.suppress(OSError):
                hierarchy.base.rmdir()
        self._hierarchies = []

    # -- identities ----------------------------------------------------------------------

    def _identity_file(self) -> Path:
        return self.root / "identities.json"

    def _load_identities(self) -> None:
        path = self._identity_file()
        if path.exists():
            self._identities = {str(k): int(v) for k, v in json.loads(path.read_text()).items()}

    def identity(self, function: str) -> int:
        """The uid (and gid) of ``function`` on this node, allocated on first use."""
        uid = self._identities.get(function)
        if uid is None:
            uid = self.uid_base + len(self._identities) + 1
            self._identities[function] = uid
            path = self._identity_file()
            temporary = path.with_suffix(".tmp")
            temporary.write_text(json.dumps(self._identities))
            os.chmod(temporary, 0o600)
            temporary.replace(path)
        return uid

    # -- cgroups -------------------------------------------------------------------------

    def _make_hierarchies(self, missing: list[str]) -> list[_Hierarchy]:
        own = _own_cgroups()
        folder = f"triggerfish-{self.node_tag}"
        if (CGROUP_ROOT / "cgroup.controllers").exists():  # v2
            parent = CGROUP_ROOT / own.get("", "/").lstrip("/")
            base = parent / folder
            base.mkdir(exist_ok=True)
            enabled = (parent / "cgroup.subtree_control").read_text().split()
            for controller in ("memory", "pids", "cpu"):
                if controller not in enabled:
                    (parent / "cgroup.subtree_control").write_text(f"+{controller}")
            (base / "cgroup.subtree_control").write_text("+memory +pids +cpu")
            _share_cpus(base / "cpu.weight", 100)
            return [_Hierarchy("unified", base)]
        found: list[_Hierarchy] = []
        for controller in V1_CONTROLLERS:
            mount = CGROUP_ROOT / controller
            if controller not in own or not (mount / "cgroup.procs").exists():
                if controller != "cpu":
                    missing.append(f"no {controller} cgroup")
                continue
            base = mount / own[controller].lstrip("/") / folder
            base.mkdir(exist_ok=True)
            if controller == "cpu":
                _share_cpus(base / "cpu.shares", 1024)
            found.append(_Hierarchy(controller, base))
        return found

    def _remove_leftovers(self) -> None:
        """Environments left by an earlier run of this node (killed with -9)."""
        for hierarchy in self._hierarchies:
            for folder in hierarchy.base.iterdir():
                if folder.is_dir() and folder.name.startswith("env-"):
                    Cell(Confinement(0, 0), [folder], None, None).remove()

    @property
    def confines(self) -> bool:
        """Whether environments get cells at all (a user of their own, cgroups, a
        Landlock fence)."""
        return self._users or bool(self._hierarchies) or self._fence is not None

    def cell(self, function: str, memory_mb: int, code_dir: Path | None) -> Cell | None:
        """A new environment's cell, fitted to ``function``; None where the sandbox
        confines nothing. Without users of their own, functions still get cgroups
        where there are some."""
        if not self.confines:
            return None
        cell = self.new_cell(self.identity(function) if self._users else os.getuid())
        try:
            return self.fit(cell, function, memory_mb, code_dir)
        except BaseException:
            cell.remove()
            raise

    def new_cell(self, uid: int) -> Cell:
        """Empty cgroups without limits yet, whose ``cgroup.procs`` ``uid`` may write
        (so that a process already running as a function's user can join)."""
        self._counter += 1
        name = f"env-{os.getpid()}-{self._counter}"
        cell = Cell(Confinement(uid, uid, []), [], None, None)
        try:
            for hierarchy in self._hierarchies:
                folder = hierarchy.base / name
                folder.mkdir()
                cell.folders.append(folder)
                if hierarchy.name == "unified":
                    cell.memory_events = folder / "memory.events"
                elif hierarchy.name == "memory":
                    cell.memory_events = folder / "memory.oom_control"
                procs = folder / "cgroup.procs"
                if uid != 0:
                    os.chown(procs, uid, uid)
                cell.confinement.procs.append(str(procs))
        except BaseException:
            cell.remove()
            raise
        return cell

    def fit(self, cell: Cell, function: str, memory_mb: int, code_dir: Path | None) -> Cell:
        """Set ``cell``'s limits for ``function`` (its memory size, the process count,
        a CPU weight), its user or its Landlock fence, and the copy of its code it runs
        from."""
        limit = (memory_mb + MEMORY_SLACK_MB) * 1024 * 1024
        for hierarchy, folder in zip(self._hierarchies, cell.folders, strict=True):
            _configure(hierarchy.name, folder, limit, memory_mb, self.max_processes)
        if self._fence is not None:
            read, write = self._fence
            own = [] if code_dir is None else [str(code_dir)]
            scratch = self.scratch_dir(function)
            cell.confinement = Confinement(
                cell.confinement.uid,
                cell.confinement.gid,
                cell.confinement.procs,
                [*read, *own],
                [*write, str(scratch)],
            )
        if self._users:
            uid = self.identity(function)
            cell.confinement = Confinement(uid, uid, cell.confinement.procs)
            if code_dir is not None:
                cell.code_dir = self._own_code(function, uid, code_dir)
        return cell

    # -- files ---------------------------------------------------------------------------

    def _own_code(self, function: str, uid: int, code_dir: Path) -> Path:
        """A copy of ``code_dir`` that only ``function``'s group can read."""
        digest = hashlib.sha256(str(code_dir).encode()).hexdigest()[:16]
        target = self.root / "code" / str(uid) / digest
        if (function, digest) in self._code_ready and target.exists():
            return target
        if not target.exists():
            staging = target.with_name(f".{digest}.{os.getpid()}")
            shutil.rmtree(staging, ignore_errors=True)
            shutil.copytree(code_dir, staging, symlinks=True)
            for root, _dirs, files in os.walk(staging):
                os.chown(root, 0, uid)
                os.chmod(root, 0o750)
                for name in files:
                    path = os.path.join(root, name)
                    if not os.path.islink(path):
                        os.chown(path, 0, uid)
                        os.chmod(path, 0o640 | (os.stat(path).st_mode & 0o110))
            _passage(target.parent.parent, 0o711)
            target.parent.mkdir(exist_ok=True)
            os.chown(target.parent, 0, uid)
            os.chmod(target.parent, 0o710)
            staging.rename(target)
        self._code_ready.add((function, digest))
        return target

    def scratch_dir(self, function: str) -> Path | None:
        """The scratch folder of ``function``, its user's alone (or, fenced, its own
        environments' alone); None without users or fence."""
        if self._fence is not None:
            folder = self.root / "tmp" / function.replace("/", "_")
            if not folder.exists():
                folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            return folder
        if not self._users:
            return None
        uid = self.identity(function)
        folder = self.root / "tmp" / str(uid)
        if not folder.exists():
            _passage(folder.parent, 0o711)
            folder.mkdir(exist_ok=True)
            os.chown(folder, uid, uid)
            os.chmod(folder, 0o700)
        return folder

    def envs_dir(self) -> Path | None:
        """Where built dependency environments go so that functions' users reach them;
        None without users (they stay in the data directory)."""
        return self.root / "envs" if self._users else None


def lock_data_dir(data_dir: Path, open_folders: tuple[str, ...]) -> None:
    """Close the data directory to functions: passage only through it, into the folders
    ``open_folders`` (which hold what functions must reach: their scratch folders, their
    copies of code, built dependency environments), and nothing else."""
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o711)
    for entry in data_dir.iterdir():
        if entry.is_symlink():
            continue
        if entry.name in open_folders:
            if entry.is_dir():
                os.chmod(entry, 0o711)
        elif entry.is_dir():
            os.chmod(entry, 0o700)
        else:
            os.chmod(entry, 0o600)


def reachable(path: Path) -> bool:
    """Whether any user can pass through every folder down to ``path`` (and read it,
    when it is not a folder)."""
    path = path.absolute()
    for folder in [*reversed(path.parents), path]:
        try:
            mode = folder.stat().st_mode
        except FileNotFoundError:
            return True  # created later, under what was checked
        if stat_module.S_ISDIR(mode):
            if not mode & stat_module.S_IXOTH:
                return False
        elif not mode & stat_module.S_IROTH:
            return False
    return True


def unreachable_runtime() -> str | None:
    """The first folder of the Python runtime (the standard library, the installed
    packages, Triggerfish itself) that other users cannot read, if any."""
    import sysconfig

    import triggerfish

    paths = sysconfig.get_paths()
    for candidate in (
        paths["stdlib"],
        paths["purelib"],
        paths["platlib"],
        os.path.dirname(triggerfish.__file__),
        os.path.realpath(sys.executable),
    ):
        if not reachable(Path(candidate)):
            return candidate
    return None


#: What every fenced environment may read: the system's folders (programs, libraries,
#: configuration such as DNS and certificates, the kernel's views).
SYSTEM_READ = (
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt",
    "/proc", "/sys", "/run",
)  # fmt: skip
#: What it may write besides its own scratch folder.
SYSTEM_WRITE = ("/dev", "/tmp", "/var/tmp")


def _fence_folders(
    private: tuple[Path, ...], *, envs: Path, shared: tuple[Path, ...] = ()
) -> tuple[list[str], list[str], list[str]]:
    """The Landlock folders of every environment (read, write), and what the fence must
    close that a function might expect: a system folder that holds one of ``private``
    (the data directory, the sandbox's folder) is left out, since Landlock cannot open
    a folder but for one of its sub-folders."""
    import sysconfig

    import triggerfish

    runtime = {
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        sys.base_exec_prefix,
        os.path.dirname(os.path.realpath(sys.executable)),
        os.path.dirname(os.path.dirname(os.path.abspath(triggerfish.__file__))),
        *sysconfig.get_paths().values(),
        *(entry for entry in sys.path if entry and os.path.isabs(entry)),
    }
    node = shutil.which("node")
    if node is not None:
        runtime.add(os.path.dirname(os.path.realpath(node)))
    held = [path.absolute() for path in private]

    def holds_private(folder: str) -> bool:
        candidate = Path(folder).absolute()
        return any(candidate == path or candidate in path.parents for path in held)

    closed: list[str] = []
    read = sorted(f for f in {*SYSTEM_READ, *runtime} if os.path.exists(f))
    read = [f for f in read if not holds_private(f)]
    # A folder beneath another of the list adds nothing but work to every cold start.
    read = [f for f in read if not any(Path(o) in Path(f).parents for o in read)]
    read.append(str(envs))
    read.extend(str(folder) for folder in shared)
    write: list[str] = []
    for folder in SYSTEM_WRITE:
        if not os.path.exists(folder):
            continue
        if holds_private(folder):
            closed.append(
                f"{folder} is closed to functions because the data directory lies in it "
                "(they write to TMPDIR, a folder of their own)"
            )
        else:
            write.append(folder)
    return read, write, closed


def _passage(folder: Path, mode: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if folder.stat().st_mode & 0o777 != mode:
        os.chmod(folder, mode)


def _share_cpus(weight_file: Path, default: int) -> None:
    """Give the folder of all environments the CPU weight of one busy process per CPU
    (``default`` is one process's): the memory-sized weights of the environments divide
    that among functions, and do not set functions back against the node's own threads
    (which would starve the handlers the node is waiting for)."""
    if weight_file.exists():
        with contextlib.suppress(OSError):
            weight_file.write_text(str(default * (os.cpu_count() or 1)))


def _configure(kind: str, folder: Path, limit: int, memory_mb: int, processes: int) -> None:
    weight_share = max(memory_mb, 128) / FULL_CPU_MB
    if kind == "unified":
        (folder / "memory.max").write_text(str(limit))
        swap = folder / "memory.swap.max"
        if swap.exists():
            swap.write_text("0")
        (folder / "pids.max").write_text(str(processes))
        weight = folder / "cpu.weight"
        if weight.exists():
            weight.write_text(str(max(1, min(10000, round(100 * weight_share)))))
    elif kind == "memory":
        (folder / "memory.limit_in_bytes").write_text(str(limit))
        swap = folder / "memory.memsw.limit_in_bytes"
        if swap.exists():
            with contextlib.suppress(OSError):
                swap.write_text(str(limit))
    elif kind == "pids":
        (folder / "pids.max").write_text(str(processes))
    elif kind == "cpu":
        (folder / "cpu.shares").write_text(str(max(2, round(1024 * weight_share))))


def _own_cgroups() -> dict[str, str]:
    """This process's cgroup per v1 controller (``""`` for v2's unified hierarchy)."""
    found: dict[str, str] = {}
    with open("/proc/self/cgroup") as lines:
        for line in lines:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for controller in controllers.split(","):
                found[controller] = path
    return found
