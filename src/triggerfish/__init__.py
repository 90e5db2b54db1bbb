"""Triggerfish: run your functions when something happens.

The public SDK surface for function authors. Kept light: every execution environment
imports it.
"""

from triggerfish.context import Context, emit
from triggerfish.errors import TriggerfishError
from triggerfish.events.model import Event

__version__ = "0.1.0"

__all__ = ["Context", "Event", "TriggerfishError", "__version__", "emit"]
