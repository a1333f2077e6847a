"""The retry loop: tenacity runs one call's attempts under the retry rules, its deadline and its job's budget.

A wait that would cross the call's deadline is not begun. A 429's wait becomes the client's
shared cool-down, so every request holds off, not only the one that was refused. A 429 says
"later", not "no": it does not spend the attempts meant for errors (``max_attempts``); the
deadline, the job's retry budget and ``max_retry_after`` still bound it.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import attrs
import httpx
import tenacity as _t

from .._clock import Clock
from .._errors import BoxAPIError, BoxError, BoxTimeoutError, RateLimitError, with_note
from ._cooldown import Cooldown
from ._pacing_state import Reservation
from ._policy import RetryBudget, RetryPolicy, should_retry

__all__ = ["Call", "CallObserver", "Final", "run_attempts"]

logger = logging.getLogger("box_sessions")

R = TypeVar("R")


class Final(Exception):  # noqa: N818 - a private carrier, not an error users see
    """Carries an error out of the retry loop untouched: it must not be retried.

    Used for errors of the token request (already retried on their own) and for waits that
    would cross the deadline.
    """

    def __init__(self, error: BoxError) -> None:
        super().__init__()
        self.error = error


@attrs.define
class CallObserver:
    """Counts what one caller's calls cost; the bulk manager keeps one per job."""

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0


@attrs.define
class Call:
    """One call: what to send, and what it remembers across its attempts."""

    url: httpx.URL
    json_body: Any
    form: Mapping[str, str] | None
    observer: CallObserver | None
    budget: RetryBudget | None
    deadline: float | None
    hedge: bool = False  # the caller says a second copy is harmless
    refreshed_after_401: bool = False
    budget_refused: bool = False
    reservation: Reservation | None = None  # this attempt's rate-limiter slot
    failed_attempts: int = 0  # attempts that failed for another reason than a 429

    @property
    def authenticated(self) -> bool:
        """API calls carry the bearer token; the token request (a form) does not."""
        return self.form is None

    def remaining(self, clock: Clock) -> float | None:
        """Seconds left before the deadline; ``None`` without one."""
        return None if self.deadline is None else self.deadline - clock.monotonic()


def _make_stop(call: Call, policy: RetryPolicy, clock: Clock) -> Callable[[_t.RetryCallState], bool]:
    def stop(rs: _t.RetryCallState) -> bool:
        error = rs.outcome.exception() if rs.outcome is not None else None
        if not isinstance(error, RateLimitError):
            call.failed_attempts += 1
        if call.failed_attempts >= policy.max_attempts or policy.max_attempts == 1:
            return True
        if call.deadline is not None and clock.monotonic() + rs.upcoming_sleep > call.deadline:
            return True
        if call.budget is not None and not call.budget.withdraw(timeout=isinstance(error, BoxTimeoutError)):
            call.budget_refused = True
            return True
        return False

    return stop


def _make_wait(policy: RetryPolicy, rng: random.Random) -> Callable[[_t.RetryCallState], float]:
    def wait(rs: _t.RetryCallState) -> float:
        assert rs.outcome is not None  # noqa: S101 - tenacity sets it before asking for a wait
        error = rs.outcome.exception()
        if isinstance(error, BoxAPIError) and error.retry_after is not None:
            return error.retry_after
        return policy.backoff(rs.attempt_number, rng)

    return wait


def _make_before_sleep(call: Call, policy: RetryPolicy, cooldown: Cooldown) -> Callable[[_t.RetryCallState], None]:
    def before_sleep(rs: _t.RetryCallState) -> None:
        assert rs.outcome is not None  # noqa: S101 - tenacity sets it before sleeping
        error = rs.outcome.exception()
        if isinstance(error, RateLimitError):
            cooldown.hold(rs.upcoming_sleep)
        if call.observer is not None:
            call.observer.retries += 1
        logger.info(
            "Retrying POST %s after %s (%s), waiting %.2f s",
            call.url.path,
            _describe(error),
            f"a 429 does not count against the {policy.max_attempts} attempts"
            if isinstance(error, RateLimitError)
            else f"attempt {call.failed_attempts} of {policy.max_attempts}",
            rs.upcoming_sleep,
        )

    return before_sleep


async def run_attempts(
    attempt: Callable[[Call], Awaitable[R]],
    call: Call,
    *,
    policy: RetryPolicy,
    clock: Clock,
    rng: random.Random,
    cooldown: Cooldown,
) -> R:
    """Run ``attempt(call)`` until it succeeds or the policy, the deadline or the budget says stop.

    Raises:
        BoxError: the last attempt's error; a `Final` one as it was, without further attempts.
    """
    retrying = _t.AsyncRetrying(
        sleep=clock.sleep,
        stop=_make_stop(call, policy, clock),
        wait=_make_wait(policy, rng),
        retry=_t.retry_if_exception(lambda error: should_retry(error, policy)),
        before_sleep=_make_before_sleep(call, policy, cooldown),
        reraise=True,
    )
    try:
        result: R = await retrying(attempt, call)
    except Final as final:
        raise final.error from final.error.__cause__
    except BoxError as error:
        if call.budget_refused:
            _note_budget(error)
        raise
    if call.budget is not None:
        call.budget.deposit()
    return result


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
