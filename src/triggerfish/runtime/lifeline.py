"""Execution environments end with the node that started them.

When a node dies without stopping its environments (``kill -9``, a crash, the machine's
out-of-memory killer), its leased events are run again: by the node itself once
restarted, or by another node of the cluster when their lease runs out. A handler left
running would do its work a second time beside them, so no environment outlives its
node, even in the middle of a handler:

- The node holds the write end of one pipe, its *lifeline*, and never writes to it.
  Every Python environment holds the read end (the zygote passes it on to what it
  forks, a snapshot template to its forks) and a thread of the environment waits on it.
  When the node ends, the kernel closes the write end, the read end reports the hang-up
  and the environment kills its process group: itself and the processes its handler
  started without leaving the group. Nobody ever writes to the pipe, so the waiting
  thread costs nothing while the node lives. The zygote or a template dying ends
  nothing: only the node's end counts.
- A Node.js environment cannot wait on a descriptor from a thread of its own; it is a
  child of the node and asks the kernel to be killed when its parent ends
  (``PR_SET_PDEATHSIG``, through util-linux's ``setpriv``), which covers the node
  thread that started it: the event loop's, which lives as long as the node.
- A ``provided`` relay watches its protocol socket and kills its bootstrap when the
  node is gone.
"""

from __future__ import annotations

import _thread
import fcntl
import functools
import os
import select
import shutil
import signal
import sys

#: Where an environment forked by a fork server finds the lifeline.
LIFELINE_FD = 4
#: Exit status of an environment whose node is gone (when it cannot kill its group).
EXIT_ORPHANED = 70


@functools.cache
def node_lifeline() -> int:
    """The read end of this node's lifeline, to pass to the processes it starts. The
    write end stays open in this process, unused, for the process's whole life."""
    read_end, _write_end = os.pipe2(os.O_CLOEXEC)
    return read_end


def relocate(fd: int, lowest: int = 10) -> int:
    """A copy of ``fd`` at ``lowest`` or above (clear of the descriptors a fork
    server's child is about to place), closed on exec."""
    return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, lowest)


def watch(fd: int) -> None:
    """In an environment: end it (and its process group) once the node holding the
    other end of ``fd`` is gone."""
    _thread.start_new_thread(_wait_for_hang_up, (fd,))


def _wait_for_hang_up(fd: int) -> None:
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
    while True:
        try:
            if poller.poll():
                break
        except InterruptedError:  # pragma: no cover - retried by Python since 3.5
            continue
    pid = os.getpid()
    if os.getpgrp() == pid:
        os.killpg(pid, signal.SIGKILL)
    os._exit(EXIT_ORPHANED)


def die_with_parent_argv(argv: list[str]) -> list[str]:
    """``argv`` run so that it is killed when its parent ends, for programs that cannot
    watch the lifeline themselves (Node.js): through ``setpriv`` where the machine has
    it, ``argv`` unchanged where it does not."""
    setpriv = _setpriv()
    if setpriv is None:
        return argv
    return [setpriv, "--pdeathsig", "KILL", "--", *argv]


@functools.cache
def _setpriv() -> str | None:
    return shutil.which("setpriv") if sys.platform == "linux" else None
