"""Snapshot templates of ``snapstart: true`` function versions (the executor's side).

A ``Template`` is a process forked from the zygote that imported one version's
handler (the init phase, run once per template), ran the before-snapshot hooks and
now serves forks: environments of that version are forked from it and start with the
module already imported, so scaling from zero costs a fork even for heavy imports.

``create_template`` reports the init the way an environment would: ``InitFailed``
(with the module's error), or an ``Exit`` when the template died, ran out of memory
or its import outlasted the init timeout (it is then killed; the zygote never runs
user code, so a hanging import blocks nothing else). None means no zygote could serve
(the executor then starts plain environments).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time

from triggerfish.runtime.base import FunctionSpec
from triggerfish.runtime.environment import (
    Exit,
    ExitReason,
    WorkerOptions,
    environment_variables,
    init_message,
    output_file,
    read_output,
    scratch_directory,
)
from triggerfish.runtime.protocol import EXIT_OUT_OF_MEMORY, InitFailed, Ready
from triggerfish.runtime.sandbox import Cell
from triggerfish.runtime.zygote import ForkedProcess, ForkServer, Zygotes


class Template:
    def __init__(
        self, server: ForkServer, output_fd: int, ready: Ready, cell: Cell | None = None
    ) -> None:
        self.server = server
        self._cell = cell
        self.init_duration_ms = ready.init_duration_ms
        #: What the import printed, given to the first environment's invocation.
        self.pending_logs = ready.logs
        self._output_fd: int | None = output_fd

    @property
    def alive(self) -> bool:
        return not self.server.dead

    @property
    def last_used(self) -> float:
        """``time.monotonic()`` of the last fork from it."""
        return self.server.last_used

    @property
    def pid(self) -> int:
        return self.server.pid

    async def close(self) -> None:
        self.server.close()
        await self.server.wait_closed()
        if self._output_fd is not None:
            os.close(self._output_fd)
            self._output_fd = None
        cell, self._cell = self._cell, None
        if cell is not None:
            await cell.discard()


async def create_template(
    spec: FunctionSpec, options: WorkerOptions, zygotes: Zygotes
) -> Template | InitFailed | Exit | None:
    zygote = await zygotes.get(spec.python or options.python)
    if zygote is None:
        return None
    cell = None
    if options.sandbox is not None:
        cell = options.sandbox.cell(spec.function, spec.memory, spec.code_dir)
        if cell is not None:
            spec, _ = cell.runs(spec, {})  # its variables are made from the copy's spec
    try:
        made = await _create(spec, options, zygote, cell)
    except BaseException:
        if cell is not None:
            cell.remove()
        raise
    if not isinstance(made, Template) and cell is not None:
        await cell.discard()
    return made


async def _create(
    spec: FunctionSpec, options: WorkerOptions, zygote: ForkServer, cell: Cell | None
) -> Template | InitFailed | Exit | None:
    scratch = scratch_directory(spec, options)
    env = environment_variables(spec, scratch, "snap-start")
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    output_fd = output_file(f"triggerfish-{spec.function}-snapshot", scratch)
    started_at = time.time()
    started = time.perf_counter()
    try:
        process = await zygote.spawn(
            str(spec.code_dir),
            env,
            [theirs.fileno(), output_fd],
            template=init_message(spec, options),
            confine=None if cell is None else cell.confinement,
        )
    except OSError:
        ours.close()
        os.close(output_fd)
        return None
    except BaseException:
        ours.close()
        os.close(output_fd)
        raise
    finally:
        theirs.close()
    server = ForkServer(ours, process, label=f"snapshot of {spec.key}")
    try:
        hello = await server.hello(options.init_timeout)
    except BaseException:
        await _discard(server, output_fd)
        raise
    if isinstance(hello, Ready):
        return Template(server, output_fd, hello, cell)
    timed_out = hello is None and not server.dead
    await _discard(server, None)
    try:
        if isinstance(hello, InitFailed):
            return hello
        return _exit(process, timed_out, read_output(output_fd, options), started_at, started)
    finally:
        os.close(output_fd)


async def _discard(server: ForkServer, output_fd: int | None) -> None:
    server.close()
    with contextlib.suppress(asyncio.CancelledError):
        await server.wait_closed()
    if output_fd is not None:
        os.close(output_fd)


def _exit(
    process: ForkedProcess, timed_out: bool, output: str, started_at: float, started: float
) -> Exit:
    code = process.returncode
    reason: ExitReason
    if timed_out:
        reason = "timeout"
    elif code == EXIT_OUT_OF_MEMORY:
        reason = "oom"
    else:
        reason = "crashed"
    elapsed_ms = (time.perf_counter() - started) * 1000
    return Exit(reason, code, output, started_at, elapsed_ms, 0)
