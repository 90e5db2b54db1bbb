"""Delivery policy of a trigger: retries with exponential backoff and full jitter,
bounded by attempts and by event age, then the dead-letter topic.

``retry_delay`` is a pure function of the attempt number and a random source, so the
arithmetic is tested without a clock.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Literal

from triggerfish.dispatch.flow import FlowSettings
from triggerfish.dispatch.shapes import PayloadMode

#: Error types that another attempt cannot mend: the event is dead-lettered at once.
NOT_RETRIED = frozenset({"InvalidEventError"})


def not_retried(error_type: str | None) -> str | None:
    """Why a failure of ``error_type`` is not retried, or None when it may be."""
    if error_type in NOT_RETRIED:
        return f"not retried: {error_type} (the event's data does not fit the handler's model)"
    return None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 3  # total attempts, the first included
    max_age: float = 86400.0  # seconds since the bus accepted the event
    backoff: float = 1.0  # base delay in seconds
    max_backoff: float = 300.0

    def retry_delay(self, attempt: int, rand: random.Random | None = None) -> float:
        """Delay before attempt ``attempt + 1``: uniform in [0, min(cap, base * 2**(attempt-1))]."""
        ceiling = min(self.max_backoff, self.backoff * (2 ** max(0, attempt - 1)))
        return (rand or random).uniform(0.0, ceiling)

    def gives_up(self, attempt: int, age: float) -> str | None:
        """Why no further attempt is made, or None to retry."""
        if attempt >= self.max_attempts:
            return f"gave up after {attempt} attempt{'s' if attempt != 1 else ''}"
        if age >= self.max_age:
            return f"event older than max_age ({self.max_age:g} s)"
        return None

    @classmethod
    def from_config(cls, config: dict[str, Any] | None, **defaults: Any) -> RetryPolicy:
        merged = {**defaults, **(config or {})}
        return cls(**{k: v for k, v in merged.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True, slots=True)
class Subscription:
    """One trigger as the dispatcher runs it: topic -> filter -> function, with a policy."""

    id: str  # the consumer group
    function: str
    topic: str
    qualifier: str = "live"
    filters: tuple[dict[str, Any], ...] = ()  # event patterns; all must match
    # patterns matched against the event's EventBridge envelope (``event_format:
    # eventbridge``); all must match too
    envelope_filters: tuple[dict[str, Any], ...] = ()
    retry: RetryPolicy = RetryPolicy()
    dead_letter: str = ""  # topic; empty means the trigger's default "<id>.dlq"
    batch_size: int = 1
    # seconds a batch waits to fill after its first event was leased; 0 hands over
    # whatever is available at once
    batch_window: float = 0.0
    batch_max_bytes: int = 0  # a batch is full at this many bytes of events; 0: no bound
    # a key path (``data.customer``, ``partitionkey``): events of one key value run one
    # batch at a time, in publish order; empty: no order
    ordering_key: str = ""
    payload: PayloadMode = "cloudevent"
    start: Literal["earliest", "latest"] = "latest"
    flow: FlowSettings | None = None  # concurrency, rate, debounce, priority (flow.py)

    @property
    def dead_letter_topic(self) -> str:
        return self.dead_letter or f"{self.id}.dlq"

    @property
    def redrive_topic(self) -> str:
        """Internal topic that ``dlq redrive`` feeds back into this trigger alone."""
        return f"_redrive.{self.id}"

    @property
    def debounced_topic(self) -> str:
        """Where the events a later one of their debounce key replaced are recorded."""
        return f"{self.id}.debounced"
