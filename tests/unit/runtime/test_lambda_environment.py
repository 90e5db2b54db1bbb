"""What Lambda code finds in its environment: the trace header's shape, and Amazon
Linux's ``/bin/sh`` (bash) for ``provided`` bootstraps."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from triggerfish.functions import build
from triggerfish.ids import id_time, new_id
from triggerfish.runtime import base
from triggerfish.runtime.provided.relay import bootstrap_command
from triggerfish.runtime.python import loader
from triggerfish.runtime.tracing import trace_header

TRACE = re.compile(r"^Root=1-([0-9a-f]{8})-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=[01]$")


def test_every_invocation_gets_a_trace_of_its_own_in_x_rays_form() -> None:
    request_id = new_id()
    header = trace_header(request_id)
    match = TRACE.match(header)
    assert match is not None
    assert abs(int(match.group(1), 16) - id_time(request_id)) < 5  # the root's second
    headers = {trace_header(new_id()) for _ in range(1000)}
    assert len(headers) == 1000
    assert all(TRACE.match(each) for each in headers)


def test_an_events_traceparent_keeps_its_trace() -> None:
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert trace_header(new_id(), parent) == (
        "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1"
    )
    given = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    assert trace_header(new_id(), given) == given
    assert TRACE.match(trace_header("not-an-id", "garbage"))


def test_the_loader_spells_the_folders_as_the_node_does() -> None:
    assert loader.OPT_DIR == base.OPT_DIR
    assert loader.RUNTIME_DIR == build.RUNTIME_DIR


@pytest.mark.skipif(not os.access("/bin/bash", os.X_OK), reason="no bash on this machine")
def test_a_sh_bootstrap_written_for_amazon_linux_runs_with_bash(tmp_path: Path) -> None:
    script = tmp_path / "bootstrap"
    script.write_text('#!/bin/sh\nset -o pipefail\nfalse | true\necho "status $?"\n')
    script.chmod(0o755)
    program, argv = bootstrap_command(str(script))
    done = subprocess.run(argv, executable=program, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "status 1\n"  # pipefail took effect


def test_a_bootstrap_with_another_interpreter_runs_as_it_is(tmp_path: Path) -> None:
    script = tmp_path / "bootstrap"
    script.write_text("#!/usr/bin/env python3\nprint('hi')\n")
    assert bootstrap_command(str(script)) == (str(script), [str(script)])
