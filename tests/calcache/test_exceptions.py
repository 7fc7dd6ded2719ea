"""calcache.exceptions: one root for every error, and what Google's errors carry."""

from __future__ import annotations

import inspect

import pytest

from calcache import exceptions
from calcache.exceptions import (
    CalcacheError,
    GoogleError,
    InvalidTokenData,
    RateLimited,
    RolloutError,
)

DEFINED = sorted(
    (
        cls
        for _, cls in inspect.getmembers(exceptions, inspect.isclass)
        if cls.__module__ == exceptions.__name__
    ),
    key=lambda cls: cls.__name__,
)


def test_the_module_defines_the_documented_exceptions() -> None:
    assert {cls.__name__ for cls in DEFINED} >= {
        "CalcacheError",
        "GoogleError",
        "RolloutError",
        "InvalidTokenData",
        "TokenDecryptionError",
    }


@pytest.mark.parametrize("cls", DEFINED, ids=lambda cls: cls.__name__)
def test_every_exception_is_a_calcache_error(cls: type[BaseException]) -> None:
    assert issubclass(cls, CalcacheError)


@pytest.mark.parametrize(
    ("status", "reason", "text"),
    [
        (403, "rateLimitExceeded", "Refused (403 rateLimitExceeded)"),
        (500, "", "Refused (500)"),
        (None, "notFound", "Refused (notFound)"),
        (None, "", "Refused"),
    ],
)
def test_google_errors_show_status_and_reason(status: int | None, reason: str, text: str) -> None:
    error = GoogleError("Refused", status=status, reason=reason)
    assert str(error) == text
    assert (error.status, error.reason, error.retry_after) == (status, reason, None)


def test_google_error_subclasses_carry_retry_after() -> None:
    error = RateLimited("Slow down", status=429, reason="rateLimitExceeded", retry_after=2.5)
    assert isinstance(error, GoogleError) and error.retry_after == 2.5
    assert str(error) == "Slow down (429 rateLimitExceeded)"


def test_rollout_and_token_errors_are_still_value_errors() -> None:
    assert issubclass(RolloutError, ValueError)
    assert issubclass(InvalidTokenData, ValueError)
    with pytest.raises(ValueError, match="not allowed"):
        raise RolloutError("not allowed")
