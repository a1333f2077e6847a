"""Client-side pacing: a rate limiter shared by every request of a client, adaptive on 429s.

Box allows each user about 1,000 API calls a minute, and lowers that under load without saying
so. The limiter spaces requests at the configured rate (GCRA: each request reserves the next
free slot, so concurrent requests never burst past the rate). With ``adaptive=True`` it also
learns a lower limit from Box's 429s:

- decrease: on a 429 for a request sent at the current rate, the rate drops to 90% of the rate
  Box actually accepted over the last seconds (so a limit of half the configured rate is found in
  one step, not by repeated halving), or to half the rate while there are too few answers to
  measure; 429s of requests whose slot was reserved before the last decrease are ignored (they
  were scheduled at the old rate), so one burst does not collapse the rate;
- increase: after a quiet spell with no 429, the rate climbs back linearly, by a small share of
  the configured rate each second, to probe whether the limit was lifted.
"""

from __future__ import annotations

import collections
import math

import attrs

from .._clock import Clock

__all__ = ["RateLimit", "RateLimiter"]

#: Seconds of accepted requests used to measure the rate Box allows.
MEASURE_WINDOW = 10.0
#: Successful requests needed in the window before the measurement is trusted.
MEASURE_MIN_SAMPLES = 8
#: Seconds without a decrease before the rate climbs again.
HOLD_AFTER_DECREASE = 5.0
#: Share of the configured rate added per second while climbing back.
INCREASE_PER_SECOND = 0.005


@attrs.frozen(kw_only=True)
class RateLimit:
    """How fast a client sends, shared by all its requests (the token request excepted).

    Args:
        requests_per_minute: The most the client sends. Default: Box's documented limit of
            about 1,000 calls a minute per user.
        burst: Requests that may leave at once after a quiet spell. ``1`` spaces every request
            evenly, which keeps clear of Box's limit whatever its bucket size.
        adaptive: Lower the rate when 429s keep coming despite the limit (Box applies lower
            limits under load), and raise it again later. See the module docstring.
        min_requests_per_minute: The adaptive rate never goes below this.
    """

    requests_per_minute: float = attrs.field(default=1000.0, validator=attrs.validators.gt(0))
    burst: int = attrs.field(default=1, validator=[attrs.validators.instance_of(int), attrs.validators.ge(1)])
    adaptive: bool = True
    min_requests_per_minute: float = attrs.field(default=30.0, validator=attrs.validators.gt(0))

    @min_requests_per_minute.validator
    def _check_min(self, _attribute: attrs.Attribute[float], value: float) -> None:
        if value > self.requests_per_minute:
            raise ValueError(
                f"RateLimit min_requests_per_minute ({value!r}) must not exceed "
                f"requests_per_minute ({self.requests_per_minute!r})"
            )


class RateLimiter:
    """The running limiter for one client. Private: configured through `RateLimit`."""

    def __init__(self, limit: RateLimit, clock: Clock) -> None:
        self.limit = limit
        self._clock = clock
        self._max_rate = limit.requests_per_minute / 60.0
        self._min_rate = limit.min_requests_per_minute / 60.0
        self._rate = self._max_rate
        self._tat = -math.inf  # theoretical arrival time of the next request (GCRA)
        self._last_decrease = -math.inf
        self._last_increase = -math.inf
        self._accepted: collections.deque[float] = collections.deque()
        self.decreases = 0
        self.epoch = 0  # bumped by every decrease: slots reserved before it are void

    @property
    def rate(self) -> float:
        """The current rate in requests per second."""
        return self._rate

    def reserve(self) -> float:
        """Reserve the next slot; return how many seconds to wait before sending in it."""
        now = self._clock.monotonic()
        interval = 1.0 / self._rate
        tat = max(self._tat, now)
        wait = max(0.0, tat - (self.limit.burst - 1) * interval - now)
        self._tat = tat + interval
        return wait

    async def acquire(self, max_wait: float | None = None) -> float:
        """Wait for a slot; return when it was reserved (for `on_rate_limited`).

        A slot voided by a decrease while waiting is given up for one at the new rate.

        Raises:
            TimeoutError: the wait would be longer than ``max_wait`` (nothing waited).
        """
        while True:
            epoch, reserved_at = self.epoch, self._clock.monotonic()
            wait = self.reserve()
            if max_wait is not None and wait > max_wait:
                raise TimeoutError(wait)
            if wait > 0:
                await self._clock.sleep(wait)
            if self.epoch == epoch:
                return reserved_at

    def on_accepted(self) -> None:
        """A request was not rate-limited: count it, and climb back if it has been quiet."""
        if not self.limit.adaptive:
            return
        now = self._clock.monotonic()
        self._accepted.append(now)
        self._trim(now)
        if self._rate < self._max_rate and now - self._last_decrease >= HOLD_AFTER_DECREASE:
            since = now - max(self._last_increase, self._last_decrease + HOLD_AFTER_DECREASE)
            self._rate = min(self._max_rate, self._rate + INCREASE_PER_SECOND * self._max_rate * max(0.0, since))
            self._last_increase = now

    def on_rate_limited(self, reserved_at: float) -> None:
        """A request whose slot was reserved at ``reserved_at`` got a 429 despite the limiter: slow down."""
        if not self.limit.adaptive or reserved_at < self._last_decrease:
            return  # scheduled at the old rate; the decrease already answered it
        now = self._clock.monotonic()
        self._trim(now)
        span = now - self._accepted[0] if self._accepted else 0.0
        if len(self._accepted) >= MEASURE_MIN_SAMPLES and span > 0:
            # n answers spread over `span` seconds: n - 1 intervals. An overestimate is harmless
            # (the rate only ever drops here); an underestimate would throttle for nothing.
            new_rate = 0.9 * (len(self._accepted) - 1) / span
        else:
            new_rate = 0.5 * self._rate
        new_rate = min(self._rate * 0.95, new_rate)
        self._rate = max(self._min_rate, new_rate)
        self._last_decrease = now
        self.decreases += 1
        # Slots reserved at the old rate would still leave too fast: void them and restart the
        # schedule; their holders re-reserve at the new rate (see `acquire`).
        self.epoch += 1
        self._tat = now

    def _trim(self, now: float) -> None:
        while self._accepted and self._accepted[0] < now - MEASURE_WINDOW:
            self._accepted.popleft()

    def __repr__(self) -> str:
        return f"RateLimiter(rate={self._rate * 60:.0f}/min, max={self._max_rate * 60:.0f}/min)"
