"""Triggerfish: run your functions when something happens.

The public SDK surface for function authors. Kept light: every execution environment
imports it.
"""

from typing import TYPE_CHECKING, Any

from triggerfish.app import App
from triggerfish.context import Context, emit
from triggerfish.errors import InvalidEventError, TriggerfishError
from triggerfish.events.model import Event

if TYPE_CHECKING:
    from triggerfish.idempotency import IdempotencyInProgress, idempotent, idempotent_function

__version__ = "0.1.0"

# Loaded on first use (``from triggerfish import idempotent``), so that a handler
# that does not use them pays nothing for them at its cold start.
_IDEMPOTENCY = ("IdempotencyInProgress", "idempotent", "idempotent_function")


def __getattr__(name: str) -> Any:
    if name in _IDEMPOTENCY:
        from triggerfish import idempotency

        return getattr(idempotency, name)
    raise AttributeError(f"module 'triggerfish' has no attribute {name!r}")


__all__ = [
    "App",
    "Context",
    "Event",
    "IdempotencyInProgress",
    "InvalidEventError",
    "TriggerfishError",
    "__version__",
    "emit",
    "idempotent",
    "idempotent_function",
]
