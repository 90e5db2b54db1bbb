"""The errors of ``@idempotent``."""

from __future__ import annotations

from triggerfish.errors import TriggerfishError


class IdempotencyError(TriggerfishError):
    """The idempotency records could not be read or written (the node could not be
    reached, or refused the call); the message says which and why."""


class IdempotencyInProgress(TriggerfishError):
    """Another delivery of the same key is still running and did not finish within
    this one's wait. The invocation fails with it, so its event is delivered again
    later (a trigger's retries) and then finds the result."""

    def __init__(self, key: str, *, retry_after: float) -> None:
        super().__init__(
            f"another delivery of idempotency key {key!r} is still in progress; "
            f"its claim holds for {retry_after:.1f} s more: try again later"
        )
        self.key = key
        self.retry_after = retry_after
