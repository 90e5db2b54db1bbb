"""Testing a project's functions without a server: ``TestApp`` runs its triggers
in-process on a clock the test moves (docs/testing.md). Importing this package starts
nothing."""

from triggerfish.clock import ManualClock
from triggerfish.testing.app import TestApp, test_app
from triggerfish.testing.executor import InProcessExecutor, import_handler
from triggerfish.testing.harness import Harness, Invocation, InvocationError
from triggerfish.testing.loop import LoopStuckError

__all__ = [
    "Harness",
    "InProcessExecutor",
    "Invocation",
    "InvocationError",
    "LoopStuckError",
    "ManualClock",
    "TestApp",
    "import_handler",
    "test_app",
]
