"""How ``triggerfish costs`` reads the times a person types."""

from __future__ import annotations

import pytest

from triggerfish.cli.client import CliError
from triggerfish.cli.costs import parse_time

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24h", NOW - 86400),
        ("7d", NOW - 7 * 86400),
        ("90s", NOW - 90),
        ("15m", NOW - 900),
        ("-3600", NOW - 3600),
        ("1699990000", 1699990000.0),
        ("2023-11-14T22:13:20Z", 1700000000.0),
        ("2023-11-14T22:13:20", 1700000000.0),
        ("2023-11-14T23:13:20+01:00", 1700000000.0),
    ],
)
def test_times_are_unix_iso_or_a_duration_ago(text: str, expected: float) -> None:
    assert parse_time(text, now=NOW) == expected


def test_a_time_that_means_nothing_is_refused_with_the_accepted_forms() -> None:
    with pytest.raises(CliError, match="24h or 7d") as caught:
        parse_time("yesterday", now=NOW)
    assert caught.value.code == 2
