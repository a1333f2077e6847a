"""The rate limit and the injected faults of `FakeBox`: the token bucket, latency, and seeded faults.

The bucket answers 429 with ``retry-after`` when a request finds it empty. The faults (a 5xx
answer, a stalled answer, a dropped connection) and the latency are random draws from two seeded
streams, so a seed repeats the same faults every run whatever the latency.
"""

from __future__ import annotations

import math
import random
from typing import Literal

import attrs

from .._clock import Clock
from ._fake_rules import error
from ._server import Reply

__all__ = ["Fault", "FaultDraw", "RateBucket", "SeededFaults"]

#: The faults a request may meet: its connection dropped, its answer stalled, or a 5xx answer.
Fault = Literal["drop", "stall", "error"]


@attrs.define
class RateBucket:
    """The token bucket of the rate limit, over both termination endpoints; it starts full."""

    _level: float = attrs.field(default=0.0, init=False)
    _at: float | None = attrs.field(default=None, init=False)

    def take(
        self, *, rate_limit: float | None, burst: float | None, integer_retry_after: bool, clock: Clock
    ) -> Reply | None:
        """Take one token: ``None`` when there was one, else Box's 429 with ``retry-after``.

        The settings are passed at each request, so a rate limit changed on a live fake applies at once.

        Args:
            rate_limit: Requests a minute; ``None``: no limit.
            burst: The bucket's size; ``None``: one second's worth of ``rate_limit`` (at least 1).
            integer_retry_after: Send ``retry-after`` in whole seconds (at least 1), else the exact fraction.
            clock: The time source the bucket refills by.
        """
        if rate_limit is None:
            return None
        rate = rate_limit / 60.0
        capacity = burst if burst is not None else max(1.0, rate)
        now = clock.monotonic()
        if self._at is None:
            self._level = capacity
        else:
            self._level = min(capacity, self._level + (now - self._at) * rate)
        self._at = now
        if self._level >= 1.0:
            self._level -= 1.0
            return None
        wait = (1.0 - self._level) / rate
        retry_after = str(max(1, math.ceil(wait))) if integer_retry_after else f"{wait:.3f}"
        return error(
            429,
            "rate_limit_exceeded",
            "Request rate limit exceeded, please try again later",
            {"retry-after": retry_after},
        )


@attrs.frozen
class FaultDraw:
    """One API request's draw: where it falls among the fault shares, and the 5xx it would meet."""

    share: float
    status: int

    def fault(self, *, drop_rate: float, stall_rate: float, error_rate: float) -> Fault | None:
        """The fault this draw meets under the given shares, or ``None``."""
        if self.share < drop_rate:
            return "drop"
        if self.share < drop_rate + stall_rate:
            return "stall"
        if self.share < drop_rate + stall_rate + error_rate:
            return "error"
        return None


@attrs.define
class SeededFaults:
    """The random draws of faults and latency, from a seed (``None``: unseeded).

    Two streams, so latency draws never shift which request meets which fault: the n-th request
    drawn meets the same fault (or none) every run.
    """

    seed: int | None
    _fault_rng: random.Random = attrs.field(init=False, repr=False)
    _latency_rng: random.Random = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self._fault_rng = random.Random(self.seed)
        self._latency_rng = random.Random(None if self.seed is None else f"{self.seed}:latency")

    def draw(self) -> FaultDraw:
        """The next request's draw; exactly two draws from the fault stream, whatever the shares."""
        share = self._fault_rng.random()
        return FaultDraw(share, self._fault_rng.choice((500, 502, 503)))

    async def wait_latency(self, *, latency: float, jitter: float, clock: Clock) -> None:
        """Wait ``latency`` seconds, plus a uniform draw within ± ``jitter`` when there is one."""
        delay = latency + (self._latency_rng.uniform(-jitter, jitter) if jitter else 0.0)
        if delay > 0:
            await clock.sleep(delay)
