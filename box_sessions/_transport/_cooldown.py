"""The cool-down a 429 starts: every request of the client holds off until it has passed."""

from __future__ import annotations

import math

from .._clock import Clock

__all__ = ["Cooldown"]


class Cooldown:
    """One shared quiet period: when any request is answered 429, all of them wait.

    Args:
        clock: The client's clock.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._until = -math.inf

    @property
    def remaining(self) -> float:
        """Seconds left of the cool-down (0 when none)."""
        return max(0.0, self._until - self._clock.monotonic())

    def hold(self, seconds: float) -> None:
        """Keep every request quiet for ``seconds`` from now (a longer running hold is kept)."""
        self._until = max(self._until, self._clock.monotonic() + seconds)

    async def wait(self, max_wait: float | None = None) -> None:
        """Wait until the cool-down has passed.

        Raises:
            TimeoutError: the cool-down is longer than ``max_wait`` (nothing waited); its
                argument is the wait in seconds.
        """
        while (wait := self.remaining) > 0:
            if max_wait is not None and wait > max_wait:
                raise TimeoutError(wait)
            await self._clock.sleep(wait)
