"""The retry rules: what is retried, how often, how long to wait, and when to give up."""

from __future__ import annotations

import math
import random

import attrs

from .._clock import parse_http_date
from .._errors import BoxAPIError, BoxConnectionError, BoxTimeoutError
from .._shared._pacing import LONGEST_COOLDOWN

__all__ = ["RETRYABLE_STATUSES", "RetryBudget", "RetryPolicy", "parse_retry_after", "should_retry"]

#: Statuses worth another attempt: rate limited, and Box's transient server errors.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})

#: Default deadline of one call, in seconds, across all attempts and waits.
DEFAULT_TOTAL_TIMEOUT: float | None = 300.0


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How a client retries a call that failed for a reason worth retrying.

    Retried: 429, 500, 502, 503, 504, timeouts and connection errors. Never retried: any other
    status (400, 403, 404, ...). A 401 is answered by refreshing the token once, not by this policy.

    A 429 says "later", not "no": an attempt answered 429 is retried after Box's ``retry-after``
    and does not count against ``max_attempts``, which is meant for errors. (Box's own SDKs count
    429s as attempts, so a batch that meets five 429s in a row while Box lowers its limit fails.)
    A run of 429s is still bounded: by ``total_timeout``, by a bulk job's retry budget, and by
    ``max_retry_after``. With ``total_timeout=None`` a call waits as long as Box keeps answering 429.

    Args:
        max_attempts: Attempts per call that fail for another reason than a 429, the first one
            included. ``1`` turns retries off, those of 429s too.
        initial_backoff: Ceiling of the first back-off wait, in seconds.
        max_backoff: Ceiling of any back-off wait, in seconds. Waits grow as
            ``initial_backoff * 2 ** (retry - 1)`` up to this ceiling.
        jitter: Full jitter (a uniform random wait between 0 and the ceiling, as AWS recommends)
            so that many clients do not retry in step. ``False`` waits the ceiling exactly.
        max_retry_after: The longest ``retry-after`` (of a 429 or 503) that is waited for. A
            longer one raises `RateLimitError` (or `ServerError`) at once with ``.retry_after``
            set, so that a caller is not parked for an hour without knowing.
        total_timeout: Deadline in seconds for one call across every attempt and every wait
            (back-off, ``retry-after``, the shared cool-down). A wait that would cross it is not
            begun; each attempt's network timeouts are cut to what remains. ``None``: no deadline.
        hedge: When a request that is safe to send twice (the termination calls say they are:
            Box documents terminating twice as harmless) has not been answered after twice the
            95th percentile of the client's recent answers (at least 0.2 s; once 20 answers are
            known), send a second copy and take the first answer. It cuts the tail a stalled
            answer adds to a bulk job. Never done for token requests.
    """

    max_attempts: int = attrs.field(default=5, validator=[attrs.validators.instance_of(int), attrs.validators.ge(1)])
    initial_backoff: float = attrs.field(default=1.0, validator=attrs.validators.gt(0))
    max_backoff: float = attrs.field(default=30.0, validator=attrs.validators.gt(0))
    jitter: bool = True
    max_retry_after: float = attrs.field(default=120.0, validator=attrs.validators.ge(0))
    total_timeout: float | None = attrs.field(
        default=DEFAULT_TOTAL_TIMEOUT, validator=attrs.validators.optional(attrs.validators.gt(0.0))
    )
    hedge: bool = True

    @max_backoff.validator
    def _check_max_backoff(self, _attribute: attrs.Attribute[float], value: float) -> None:
        if value < self.initial_backoff:
            raise ValueError(
                f"RetryPolicy max_backoff ({value!r}) must not be smaller than "
                f"initial_backoff ({self.initial_backoff!r})"
            )

    def backoff(self, retry_number: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``retry_number`` (1 for the first retry)."""
        ceiling = min(self.max_backoff, self.initial_backoff * 2.0 ** max(0, retry_number - 1))
        if not self.jitter:
            return ceiling
        return (rng or random).uniform(0.0, ceiling)


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait according to a ``retry-after`` header value.

    Accepts whole or fractional seconds (``"30"``, ``"1.5"``) and an HTTP-date
    (``"Wed, 21 Oct 2015 07:28:00 GMT"``; a date in the past means 0).

    Args:
        value: The header value, or ``None`` when the header is absent.
        now: The current wall-clock time (Unix seconds), to turn a date into a delay.

    Returns:
        A finite, non-negative number of seconds, at most `LONGEST_COOLDOWN` (a longer wait, a
        numeral of any length included, counts as that long), or ``None`` when the value is
        absent or unusable.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if seconds == math.inf and any(c.isdigit() for c in text):
            return LONGEST_COOLDOWN  # digits past what a float holds ("inf" itself is no numeral)
        return min(seconds, LONGEST_COOLDOWN) if math.isfinite(seconds) and seconds >= 0 else None
    when = parse_http_date(text)
    return None if when is None else min(max(0.0, when - now), LONGEST_COOLDOWN)


def should_retry(error: BaseException, policy: RetryPolicy) -> bool:
    """Whether ``error`` is worth another attempt under ``policy``.

    Timeouts, connection errors and the `RETRYABLE_STATUSES` are; a ``retry-after`` longer than
    the policy's ``max_retry_after`` is not waited for.
    """
    if isinstance(error, (BoxTimeoutError, BoxConnectionError)):
        return True
    if isinstance(error, BoxAPIError) and error.status in RETRYABLE_STATUSES:
        return error.retry_after is None or error.retry_after <= policy.max_retry_after
    return False


@attrs.define
class RetryBudget:
    """A retry quota shared by the calls of one bulk job, after AWS SDKs' retry quota.

    Each retry withdraws ``retry_cost`` (``timeout_cost`` after a timeout); each success deposits
    one, up to ``capacity``. When a retry cannot be paid for, the call is not retried: a Box that
    keeps failing gets one attempt per batch instead of ``max_attempts``, and is not hammered.
    """

    capacity: int = 500
    retry_cost: int = 5
    timeout_cost: int = 10
    _balance: int = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._balance = self.capacity

    def withdraw(self, *, timeout: bool = False) -> bool:
        """Pay for one retry; ``False`` (and nothing paid) when the balance is too low."""
        cost = self.timeout_cost if timeout else self.retry_cost
        if self._balance < cost:
            return False
        self._balance -= cost
        return True

    def deposit(self) -> None:
        """A call succeeded: give one back, up to the capacity."""
        self._balance = min(self.capacity, self._balance + 1)
