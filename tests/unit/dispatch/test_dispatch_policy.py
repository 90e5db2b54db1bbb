"""Retry arithmetic: exponential backoff with full jitter, bounded by attempts and age."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from triggerfish.dispatch.policy import RetryPolicy, Subscription


@given(attempt=st.integers(1, 40), seed=st.integers(0, 2**32))
def test_delay_stays_within_the_capped_exponential_ceiling(attempt: int, seed: int) -> None:
    policy = RetryPolicy(backoff=0.5, max_backoff=60.0)
    delay = policy.retry_delay(attempt, random.Random(seed))
    assert 0.0 <= delay <= min(60.0, 0.5 * 2 ** (attempt - 1))


def test_ceiling_doubles_each_attempt_until_the_cap() -> None:
    policy = RetryPolicy(backoff=1.0, max_backoff=10.0)
    highest = [
        max(policy.retry_delay(a, random.Random(s)) for s in range(300)) for a in (1, 2, 3, 5)
    ]
    assert highest[0] <= 1.0 < highest[1] <= 2.0 < highest[2] <= 4.0
    assert 4.0 < highest[3] <= 10.0


def test_jitter_spreads_retries() -> None:
    policy = RetryPolicy(backoff=1.0)
    delays = {round(policy.retry_delay(4, random.Random(s)), 6) for s in range(50)}
    assert len(delays) > 40


@pytest.mark.parametrize(
    ("attempt", "age", "gives_up"),
    [(1, 0.0, False), (2, 10.0, False), (3, 0.0, True), (1, 3600.0, True), (2, 3599.9, False)],
)
def test_gives_up_at_max_attempts_or_max_age(attempt: int, age: float, gives_up: bool) -> None:
    policy = RetryPolicy(max_attempts=3, max_age=3600.0)
    reason = policy.gives_up(attempt, age)
    assert (reason is not None) == gives_up
    if reason:
        assert ("attempt" in reason) or ("max_age" in reason)


def test_from_config_keeps_defaults_for_missing_keys() -> None:
    policy = RetryPolicy.from_config({"max_attempts": 5}, max_age=60.0)
    assert (policy.max_attempts, policy.max_age, policy.backoff) == (5, 60.0, 1.0)


def test_default_dead_letter_topic_is_per_trigger() -> None:
    sub = Subscription(id="resize.uploads", function="resize", topic="uploads")
    assert sub.dead_letter_topic == "resize.uploads.dlq"
    assert Subscription(id="a.b", function="a", topic="b", dead_letter="x").dead_letter_topic == "x"
