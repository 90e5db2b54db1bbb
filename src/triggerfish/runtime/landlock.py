"""Landlock: the filesystem, signal and socket fence of a node that is not root.

A process that calls ``restrict`` keeps access to the folders it lists and loses it to
every other file of the machine, for itself and everything it starts; it also cannot
signal or trace processes outside its fence (the node, the fork servers, other
functions' environments), nor reach their ``/proc/<pid>`` details (``environ``, ``fd``,
``mem``). Linux has offered Landlock to unprivileged processes since 5.13; signal and
abstract-socket scoping need its ABI 6 (Linux 6.12), and are skipped on older kernels.

This module imports only the standard library and is also a program, so that runtimes
that are not Python (Node.js, custom runtimes) are fenced before they start::

    python -I -S landlock.py '{"read": [...], "write": [...]}' -- node bootstrap.js ...
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import sys

_SYS_CREATE_RULESET = 444  # the same number on every architecture Linux numbers anew
_SYS_ADD_RULE = 445
_SYS_RESTRICT_SELF = 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

EXECUTE = 1 << 0
WRITE_FILE = 1 << 1
READ_FILE = 1 << 2
READ_DIR = 1 << 3
REMOVE_DIR = 1 << 4
REMOVE_FILE = 1 << 5
MAKE_CHAR = 1 << 6
MAKE_DIR = 1 << 7
MAKE_REG = 1 << 8
MAKE_SOCK = 1 << 9
MAKE_FIFO = 1 << 10
MAKE_BLOCK = 1 << 11
MAKE_SYM = 1 << 12
REFER = 1 << 13  # ABI 2
TRUNCATE = 1 << 14  # ABI 3
IOCTL_DEV = 1 << 15  # ABI 5

SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
SCOPE_SIGNAL = 1 << 1  # ABI 6

#: Rights a rule may give on a file (the others concern folders).
FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV
READ = EXECUTE | READ_FILE | READ_DIR


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


_loaded: list[ctypes.CDLL] = []


def _libc() -> ctypes.CDLL:
    if not _loaded:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        _loaded.append(libc)
    return _loaded[0]


def abi() -> int:
    """The Landlock ABI version the kernel offers; 0 where it offers none."""
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "aarch64", "riscv64"):
        return 0
    version = _libc().syscall(
        _SYS_CREATE_RULESET, None, ctypes.c_size_t(0), _CREATE_RULESET_VERSION
    )
    return max(0, int(version))


def handled(version: int) -> int:
    """Every filesystem right ABI ``version`` knows (all of them are denied unless a rule
    gives them)."""
    rights = (MAKE_SYM << 1) - 1
    if version >= 2:
        rights |= REFER
    if version >= 3:
        rights |= TRUNCATE
    if version >= 5:
        rights |= IOCTL_DEV
    return rights


def restrict(read: list[str], write: list[str], version: int | None = None) -> None:
    """Fence this process (and what it starts): read and execute beneath ``read``, every
    right beneath ``write``, nothing elsewhere; no signals to, or traces of, processes
    outside the fence. A listed path that does not exist is skipped. Raises OSError when
    the kernel refuses: the caller must then not run the function."""
    if version is None:
        version = abi()
    if version < 1:
        raise OSError("Landlock is not available in this kernel")
    libc = _libc()
    rights = handled(version)
    attr = _RulesetAttr(rights, 0, 0)
    size = ctypes.sizeof(_RulesetAttr) if version >= 6 else 8
    if version >= 6:
        attr.scoped = SCOPE_SIGNAL | SCOPE_ABSTRACT_UNIX_SOCKET
    ruleset = libc.syscall(_SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), 0)
    if ruleset < 0:
        _fail(libc, "create a Landlock ruleset")
    try:
        for paths, allowed in ((read, READ), (write, rights)):
            for path in paths:
                _allow(libc, int(ruleset), path, allowed & rights)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            _fail(libc, "set no_new_privs")
        if libc.syscall(_SYS_RESTRICT_SELF, int(ruleset), 0) != 0:
            _fail(libc, "enter the Landlock fence")
    finally:
        os.close(int(ruleset))


def _allow(libc: ctypes.CDLL, ruleset: int, path: str, rights: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        if not os.path.isdir(path):
            rights &= FILE_RIGHTS
        rule = _PathBeneath(rights, fd)
        if libc.syscall(_SYS_ADD_RULE, ruleset, _RULE_PATH_BENEATH, ctypes.byref(rule), 0) != 0:
            _fail(libc, f"allow {path}")
    finally:
        os.close(fd)


def _fail(libc: ctypes.CDLL, what: str) -> None:
    number = ctypes.get_errno()
    raise OSError(number, f"cannot {what}: {os.strerror(number)}")


def main(argv: list[str]) -> None:
    """``landlock.py RULES -- PROGRAM ARGS...``: fence, then become ``PROGRAM``."""
    if len(argv) < 4 or argv[2] != "--":
        raise SystemExit("usage: landlock.py RULES -- PROGRAM [ARGS...]")
    rules = json.loads(argv[1])
    restrict(rules["read"], rules["write"])
    os.execvp(argv[3], argv[3:])


if __name__ == "__main__":
    main(sys.argv)
