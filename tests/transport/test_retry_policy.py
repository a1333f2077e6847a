"""RetryPolicy's validation, back-off, and the Retry-After parser."""

from __future__ import annotations

import email.utils
import random

import pytest

from box_sessions import RetryPolicy
from box_sessions._sending import parse_retry_after
from box_sessions._shared._pacing import LONGEST_COOLDOWN

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("30", 30.0, id="whole"),
        pytest.param("1.5", 1.5, id="fraction"),
        pytest.param(" 2 ", 2.0, id="spaces"),
        pytest.param("0", 0.0, id="zero"),
        pytest.param(email.utils.formatdate(NOW + 45, usegmt=True), 45.0, id="http-date"),
        pytest.param(email.utils.formatdate(NOW - 45, usegmt=True), 0.0, id="past-date"),
        pytest.param(None, None, id="absent"),
        pytest.param("", None, id="empty"),
        pytest.param("-1", None, id="negative"),
        pytest.param("nan", None, id="nan"),
        pytest.param("inf", None, id="inf"),
        pytest.param("soon", None, id="garbage"),
        pytest.param("Wed, 21 Oct 2015 07:28:00 -0000", None, id="date-without-zone"),
        pytest.param("99999999999999999999", LONGEST_COOLDOWN, id="longer-than-any-wait"),
        pytest.param("1" + "0" * 309, LONGEST_COOLDOWN, id="digits-past-a-float"),
        pytest.param("Fri, 31 Dec 9999 23:59:59 GMT", LONGEST_COOLDOWN, id="far-date"),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    """Seconds, fractions and HTTP-dates are read (a wait of any length as LONGEST_COOLDOWN at most); else None."""
    assert parse_retry_after(value, now=NOW) == expected


def test_backoff_grows_exponentially_up_to_the_cap() -> None:
    """Without jitter the waits are initial * 2**(n-1), capped at max_backoff."""
    policy = RetryPolicy(initial_backoff=1.0, max_backoff=5.0, jitter=False)
    assert [policy.backoff(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_full_jitter_stays_between_zero_and_the_ceiling() -> None:
    """With jitter every wait lies in [0, ceiling] and they differ."""
    policy = RetryPolicy(initial_backoff=1.0, max_backoff=8.0)
    rng = random.Random(7)
    waits = [policy.backoff(4, rng) for _ in range(200)]
    assert all(0.0 <= w <= 8.0 for w in waits)
    assert len(set(waits)) > 100


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"max_attempts": 0}, id="attempts-0"),
        pytest.param({"max_attempts": 2.5}, id="attempts-float"),
        pytest.param({"initial_backoff": 0}, id="backoff-0"),
        pytest.param({"initial_backoff": 5, "max_backoff": 1}, id="cap-below-initial"),
        pytest.param({"max_retry_after": -1}, id="negative-retry-after-cap"),
        pytest.param({"total_timeout": 0}, id="deadline-0"),
    ],
)
def test_invalid_policy_is_refused(kwargs: dict[str, float]) -> None:
    """Nonsense settings raise at construction, naming the field."""
    with pytest.raises((ValueError, TypeError)) as info:
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
    assert next(iter(kwargs)) in str(info.value)


def test_defaults_are_documented_values() -> None:
    """The defaults are the ones the README documents."""
    policy = RetryPolicy()
    assert (policy.max_attempts, policy.initial_backoff, policy.max_backoff) == (5, 1.0, 30.0)
    assert (policy.max_retry_after, policy.total_timeout, policy.jitter) == (120.0, 300.0, True)


def test_no_deadline_is_allowed() -> None:
    """total_timeout=None turns the deadline off."""
    assert RetryPolicy(total_timeout=None).total_timeout is None
