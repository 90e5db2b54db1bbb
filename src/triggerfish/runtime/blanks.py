"""Blank environments: forked ahead of need, already in cgroups of their own.

Moving a process into a cgroup makes the kernel wait for a grace period of RCU on
hosts whose cgroups are not mounted to favour such moves (``favordynmods``): about
ten milliseconds, far more than the fork itself. With the sandbox, every fork server
(the zygote of an interpreter, a snapshot template) therefore keeps ``PER_SERVER``
blank children: forked in the background, moved into a new cell, and waiting on their
channel. A cold start takes one, fits the cell to its function (limits, user, code),
sends it a ``Become`` (working directory, variables, user) and its ``Init``, and
another blank is forked behind it. When none is ready the start forks as it would
without blanks, into its cell directly, and pays the wait.

Blanks hold no user code and no secret of any function until their ``Become``. They
end with their fork server (``ForkServer.close``) or with the node (the lifeline).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from dataclasses import dataclass

from triggerfish.runtime.environment import output_file
from triggerfish.runtime.sandbox import Cell, Sandbox
from triggerfish.runtime.zygote import ForkedProcess, ForkServer

log = logging.getLogger("triggerfish.runtime")

#: Blanks kept ready per fork server.
PER_SERVER = 2


@dataclass(slots=True)
class Blank:
    process: ForkedProcess
    sock: socket.socket  # the executor's end of its channel
    output_fd: int
    cell: Cell

    def close(self) -> None:
        self.process.kill()
        self.cell.remove()
        self.sock.close()
        with contextlib.suppress(OSError):
            os.close(self.output_fd)


def take(server: ForkServer, sandbox: Sandbox, uid: int, scratch: str) -> Blank | None:
    """A ready blank of ``server`` (whose cells ``uid`` may join: a template's user,
    or root for a zygote), None when there is none; forks the next ones behind it."""
    blanks = server.blanks
    blank: Blank | None = None
    while blanks and blank is None:
        candidate = blanks.pop(0)
        if candidate.process.finished():
            candidate.close()
        else:
            blank = candidate
    _refill(server, sandbox, uid, scratch)
    return blank


def _refill(server: ForkServer, sandbox: Sandbox, uid: int, scratch: str) -> None:
    missing = PER_SERVER - len(server.blanks) - server.blanks_coming
    for _ in range(max(0, missing)):
        server.blanks_coming += 1
        task = asyncio.get_running_loop().create_task(_fork(server, sandbox, uid, scratch))
        server.blank_tasks.add(task)
        task.add_done_callback(server.blank_tasks.discard)


async def _fork(server: ForkServer, sandbox: Sandbox, uid: int, scratch: str) -> None:
    try:
        cell = sandbox.new_cell(uid)
    except OSError as exc:
        server.blanks_coming -= 1
        log.warning("no cgroup for a blank environment: %s", exc)
        return
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    output_fd = output_file("triggerfish-blank", scratch)
    try:
        process = await server.spawn(
            "/", {}, [theirs.fileno(), output_fd], confine=cell.confinement, blank=True
        )
    except (OSError, asyncio.CancelledError):
        ours.close()
        os.close(output_fd)
        cell.remove()
        return
    finally:
        theirs.close()
        server.blanks_coming -= 1
    blank = Blank(process, ours, output_fd, cell)
    if server.dead:
        blank.close()
    else:
        server.blanks.append(blank)
