"""Lambda's error answers for what the node itself cannot do for now."""

from __future__ import annotations

from triggerfish.api.lambda_.errors import lambda_error
from triggerfish.errors import AdapterError


def test_a_store_that_is_away_is_a_503_the_sdk_retries() -> None:
    error = lambda_error(AdapterError("cannot reach the store (postgresql://db/tf): refused"))
    assert error.status == 503
    assert error.code == "ServiceException"
    assert error.headers == {"Retry-After": "1"}
    assert "cannot reach the store" in str(error)
