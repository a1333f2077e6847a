"""The retry concern: one call's attempts under the retry rules, its deadline and its job's budget.

tenacity runs the attempts (`Attempts.retrying`); the rules are small named methods of one
per-call object, as stamina builds them: what is retried (``retry``), what an attempt counts
(``after``), when to stop (``stop``), how long to wait (``wait``), and what is said before the
wait (``before_sleep``).

A wait that would cross the call's deadline is not begun. A 429 says "later", not "no": it does
not spend the attempts meant for errors (``max_attempts``); the deadline, the job's retry budget
and ``max_retry_after`` still bound it. The wait after a 429 is the cool-down it started for every
request (Box's ``retry-after``, or the back-off chosen for the attempt, `Attempts.backoff`), which
pacing keeps: the retry layer only waits it out.
"""

from __future__ import annotations

import logging
import random

import tenacity as _t

from .._clock import Clock
from .._errors import BoxAPIError, BoxError, BoxTimeoutError, RateLimitError, with_note
from .._telemetry import Telemetry
from ._hooks import retry_reason
from ._policy import RetryPolicy, should_retry
from ._request import Attempt, Request

__all__ = ["Attempts", "Final"]

logger = logging.getLogger("box_sessions")


class Final(Exception):  # noqa: N818 - a private carrier, not an error users see
    """Carries an error out of the retry loop untouched: it must not be retried.

    Used for errors of the token request (already retried on their own), for waits that would
    cross the deadline, and for a client closed under the call.
    """

    def __init__(self, error: BoxError) -> None:
        super().__init__()
        self.error = error


class Attempts:
    """One call's attempts as the retry rules see them: failures counted, the budget paid, the back-off chosen.

    Args:
        policy: The client's retry rules.
        request: The call: its deadline, its job's budget, its observer.
        clock: The client's clock (waits, the deadline).
        rng: The jitter's random source.
        telemetry: Told of each retry, with its reason.
    """

    def __init__(
        self, policy: RetryPolicy, request: Request, *, clock: Clock, rng: random.Random, telemetry: Telemetry
    ) -> None:
        self._policy = policy
        self._what = request.what
        self._clock = clock
        self._rng = rng
        self._deadline = request.deadline
        self._budget = request.budget
        self._observer = request.observer
        self._telemetry = telemetry
        self._failures = 0  # attempts that failed for another reason than a 429
        self._budget_refused = False
        self.backoff = 0.0
        """Seconds the attempt under way waits before the next one if it fails without a ``retry-after``."""

    def retrying(self) -> _t.AsyncRetrying:
        """tenacity's loop over this call's attempts."""
        return _t.AsyncRetrying(
            sleep=self._clock.sleep,
            retry=_t.retry_if_exception(self._is_retried),
            after=self._count,
            stop=self._stop,
            wait=self._wait,
            before_sleep=self._before_sleep,
            reraise=True,
        )

    def begin(self, attempt_number: int) -> Attempt:
        """Attempt number ``attempt_number`` (from 1) begins: choose its back-off."""
        self.backoff = self._policy.backoff(attempt_number, self._rng)
        return Attempt(attempt_number, self.backoff, attempt_number - 1)

    def _is_retried(self, error: BaseException) -> bool:
        return should_retry(error, self._policy)

    def _count(self, rs: _t.RetryCallState) -> None:
        if not isinstance(_error(rs), RateLimitError):
            self._failures += 1

    def _stop(self, rs: _t.RetryCallState) -> bool:
        if self._policy.max_attempts == 1 or self._failures >= self._policy.max_attempts:
            return True
        if self._deadline is not None and self._clock.monotonic() + rs.upcoming_sleep > self._deadline:
            return True
        return not self._pay_for_retry(_error(rs))

    def _pay_for_retry(self, error: BaseException | None) -> bool:
        """Withdraw one retry from the job's budget; ``False`` when it cannot be paid for."""
        if self._budget is None or self._budget.withdraw(timeout=isinstance(error, BoxTimeoutError)):
            return True
        self._budget_refused = True
        return False

    def _wait(self, rs: _t.RetryCallState) -> float:
        error = _error(rs)
        if isinstance(error, BoxAPIError) and error.retry_after is not None:
            return error.retry_after
        return self.backoff

    def _before_sleep(self, rs: _t.RetryCallState) -> None:
        error = _error(rs)
        reason = retry_reason(error)
        self._telemetry.retry(reason)
        if self._observer is not None:
            self._observer.retrying(reason)
        logger.info(
            "Retrying %s after %s (%s), waiting %.2f s",
            self._what,
            _describe(error),
            f"a 429 does not count against the {self._policy.max_attempts} attempts"
            if isinstance(error, RateLimitError)
            else f"attempt {self._failures} of {self._policy.max_attempts}",
            rs.upcoming_sleep,
        )

    def succeeded(self) -> None:
        """The call succeeded: the job's budget gets one back."""
        if self._budget is not None:
            self._budget.deposit()

    def failed(self, error: BoxError) -> None:
        """The call failed with ``error``: say so in it when the budget refused a retry."""
        if self._budget_refused:
            _note_budget(error)


def _error(rs: _t.RetryCallState) -> BaseException | None:
    return None if rs.outcome is None else rs.outcome.exception()


def _note_budget(error: BoxError) -> None:
    note = "not retried: the job's retry budget is spent"
    if isinstance(error, BoxAPIError):
        with_note(error, note)
    else:
        error.args = (f"{error} ({note})",)


def _describe(error: BaseException | None) -> str:
    if isinstance(error, BoxAPIError):
        return f"{error.status} {error.code or ''}".rstrip()
    return type(error).__name__
