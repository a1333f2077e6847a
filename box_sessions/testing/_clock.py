"""A fake clock: waits take no real time and are recorded for assertions."""

from __future__ import annotations

import asyncio

__all__ = ["FakeClock"]


class FakeClock:
    """A `box_sessions.Clock` whose time only moves when something sleeps or `advance` is called.

    Every sleep is recorded in `sleeps`, so a test of a 30 s ``retry-after`` runs in
    milliseconds and still asserts that 30 s were waited. Sleeps yield to the event loop once,
    so other tasks run in between.

    Args:
        start: The monotonic time to start at.
        wall: The wall-clock Unix time matching ``start``.
    """

    def __init__(self, *, start: float = 0.0, wall: float = 1_800_000_000.0) -> None:
        self.now = start
        self._wall_offset = wall - start
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now + self._wall_offset

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)

    def advance(self, seconds: float) -> None:
        """Move time forward without sleeping."""
        self.now += seconds

    def __repr__(self) -> str:
        return f"FakeClock(now={self.now:g}, sleeps={len(self.sleeps)})"
