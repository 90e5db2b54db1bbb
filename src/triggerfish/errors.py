"""The one exception tree of Triggerfish.

Every error that Triggerfish raises on purpose is a ``TriggerfishError``. Adapters
convert their driver's errors to one of these at the boundary, keeping the original
as ``__cause__``. The HTTP API maps each branch to a status in one table
(``triggerfish.api.problems``).

    TriggerfishError
    ├── ConfigError                 bad settings or manifest (file, key, what is expected)
    ├── ValidationError             bad input from a caller (an event, a pattern, a payload)
    │   ├── EventValidationError    a CloudEvent that breaks a rule of the spec
    │   ├── PatternError            an event pattern that is not valid
    │   ├── PayloadTooLargeError    a payload over the configured limit
    │   └── InvalidEventError       an event whose data does not fit a typed handler's model
    ├── AuthError                   missing, malformed, unknown or revoked API token
    │   └── PermissionDeniedError   a valid token without the scope a call needs
    ├── NotFoundError               unknown topic, function, version, invocation ...
    ├── ConflictError               a name or id already taken
    ├── ThrottledError              a function at its concurrency limit (synchronous path)
    ├── AdapterError                a backend (database, broker, filesystem) failed
    ├── BuildError                  packaging or installing a function's code failed
    └── InvocationError             an invocation did not return normally
        ├── FunctionError           the handler raised (or the runtime could not load it)
        ├── InvocationTimeoutError  the handler ran past its timeout
        ├── OutOfMemoryError        the environment went past its memory limit
        └── CrashedError            the environment died (exit, signal)
"""

from __future__ import annotations


class TriggerfishError(Exception):
    """Root of every error Triggerfish raises on purpose."""


class ConfigError(TriggerfishError):
    """Settings or a manifest are wrong; the message names where and what is expected."""


class ValidationError(TriggerfishError):
    """Input from a caller breaks a rule; ``field`` names what is wrong when known."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class EventValidationError(ValidationError):
    """A CloudEvent breaks a rule of the CloudEvents 1.0 specification."""


class PatternError(ValidationError):
    """An event pattern is not valid."""


class PayloadTooLargeError(ValidationError):
    """A payload is larger than the configured limit."""


class InvalidEventError(ValidationError):
    """An event's data does not fit the pydantic model that the handler's first parameter
    is annotated with; the message carries pydantic's errors. Another attempt would fail
    the same way, so a trigger dead-letters the event at once instead of retrying it."""


class AuthError(TriggerfishError):
    """A request has no valid API token, or its token lacks the scope it needs."""


class PermissionDeniedError(AuthError):
    """A valid API token lacks the scope the call needs."""


class NotFoundError(TriggerfishError):
    """The named thing does not exist."""


class ConflictError(TriggerfishError):
    """The name or id is already taken."""


class ThrottledError(TriggerfishError):
    """A function is at its concurrency limit; try again after ``retry_after`` seconds."""

    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AdapterError(TriggerfishError):
    """A backend failed; the driver's error is the cause."""


class BuildError(TriggerfishError):
    """Packaging or installing a function's code failed."""


class InvocationError(TriggerfishError):
    """An invocation did not return normally."""


class FunctionError(InvocationError):
    """The handler raised, or the runtime could not load it."""


class InvocationTimeoutError(InvocationError):
    """The handler ran past its timeout and its environment was replaced."""


class OutOfMemoryError(InvocationError):
    """The environment went past its memory limit and was replaced."""


class CrashedError(InvocationError):
    """The environment died during the invocation and was replaced."""
