"""Time: an injectable clock, so that tests of long waits run in milliseconds, and HTTP-dates."""

from __future__ import annotations

import asyncio
import email.utils
import time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "SystemClock", "parse_http_date"]


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


def parse_http_date(value: str) -> float | None:
    """Unix seconds of an HTTP-date (``"Wed, 21 Oct 2015 07:28:00 GMT"``), or ``None``.

    An HTTP-date is always UTC. A date without a zone (``-0000``) or one that does not parse is
    ``None``: guessing its zone could be off by hours.
    """
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        return None
    return when.timestamp()
