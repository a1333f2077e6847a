"""Time, injectable so that tests of long waits run in milliseconds."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """What the client needs of time. `SystemClock` is the real one; tests pass a fake."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (deadlines, token expiry, cool-downs)."""
        ...

    def time(self) -> float:
        """Wall-clock Unix seconds (to read HTTP-dates)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds``; cancellable."""
        ...


class SystemClock:
    """The real clock: `time.monotonic`, `time.time` and `asyncio.sleep`."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def __repr__(self) -> str:
        return "SystemClock()"
