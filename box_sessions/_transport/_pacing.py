"""Pacing an attempt: the client's shared cool-down and its rate limiter, within the call's deadline.

Before an attempt is sent it waits out the cool-down a 429 started, reserves a slot of the rate
limiter, and waits out any cool-down that began meanwhile. A wait it may not make (past the call's
deadline, or a cool-down longer than ``max_retry_after``) fails the call at once, unsent. After the
answer, the limiter learns whether Box accepted the pace, and a 429's ``retry-after`` quiets the
whole client.
"""

from __future__ import annotations

from .._clock import Clock
from .._errors import BoxTimeoutError, RateLimitError
from ._cooldown import Cooldown
from ._ratelimit import RateLimiter
from ._retrying import Call, Final

__all__ = ["Pacing"]


class Pacing:
    """The cool-down and the rate limiter of one client, as one attempt meets them.

    Args:
        clock: The client's clock.
        limiter: The client's rate limiter; ``None`` turns pacing off (the cool-down stays).
    """

    def __init__(self, clock: Clock, limiter: RateLimiter | None) -> None:
        self._clock = clock
        self.cooldown = Cooldown(clock)
        self.limiter = limiter

    async def before_send(self, call: Call, *, max_retry_after: float) -> None:
        """Wait until ``call`` may be sent; raise `Final` when it may not wait that long."""
        await self._await_cooldown(call, max_retry_after)
        await self._await_rate_limit(call)
        await self._await_cooldown(call, max_retry_after)  # a 429 may have started one meanwhile

    async def on_answer(self, call: Call, status: int, retry_after: float | None) -> None:
        """Learn from an answer's status: a 429 slows the limiter and quiets the whole client."""
        if status == 429 and retry_after is not None:
            # Box asked for quiet: the whole client holds off, however long, whether or not this
            # call waits for it (a wait past max_retry_after fails the calls at once).
            self.cooldown.hold(retry_after)
        if self.limiter is not None and call.authenticated:
            await self.limiter.on_answer(call.reservation, status, retry_after)

    async def _cooldown_left(self, call: Call) -> float:
        """Seconds of quiet left: this client's, or the limiter's state's (shared across processes)."""
        left = self.cooldown.remaining
        if self.limiter is not None and call.authenticated:
            left = max(left, await self.limiter.state.cooldown_remaining())
        return left

    async def _await_cooldown(self, call: Call, max_retry_after: float) -> None:
        while (wait := await self._cooldown_left(call)) > 0:
            remaining = call.remaining(self._clock)
            limit = max_retry_after if remaining is None else min(max_retry_after, remaining)
            if wait > limit:
                reason = (
                    f"longer than max_retry_after ({max_retry_after:g} s)"
                    if limit == max_retry_after
                    else f"longer than the {limit:.1f} s left before this call's deadline"
                )
                raise Final(
                    RateLimitError(
                        f"Box asked the client to hold off for {wait:.1f} s more after a 429, {reason}; not sent",
                        status=429,
                        code="rate_limit_exceeded",
                        retry_after=wait,
                    )
                )
            await self._clock.sleep(wait)

    async def _await_rate_limit(self, call: Call) -> None:
        if self.limiter is None or not call.authenticated:
            return
        remaining = call.remaining(self._clock)
        try:
            call.reservation = await self.limiter.acquire(max_wait=remaining)
        except TimeoutError as exc:
            raise Final(
                BoxTimeoutError(
                    f"the client's rate limit would hold this request for {exc.args[0]:.1f} s, longer than "
                    f"the {remaining or 0:.1f} s left before this call's deadline"
                )
            ) from None
