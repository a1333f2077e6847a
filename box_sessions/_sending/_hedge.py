"""Hedging: a second copy of a request that is safe to send twice, when the first one stalls.

The delay before the second copy follows the client's recent answers: twice their 95th
percentile, once there are enough of them, and never less than `HEDGE_MIN_DELAY`.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from .._tasks import cancel_and_wait

__all__ = ["HEDGE_MIN_DELAY", "LATENCY_MIN_SAMPLES", "LATENCY_WINDOW", "Hedger"]

#: The delay is set by the answers of the last this many successful requests ...
LATENCY_WINDOW = 200
#: ... once there are at least this many of them ...
LATENCY_MIN_SAMPLES = 20
#: ... as twice their 95th percentile, and never less than this many seconds.
HEDGE_MIN_DELAY = 0.2

T = TypeVar("T")

logger = logging.getLogger("box_sessions")


class Hedger:
    """Knows how long answers take, and races a second copy against a stalled first one."""

    def __init__(self) -> None:
        self._latencies: collections.deque[float] = collections.deque(maxlen=LATENCY_WINDOW)
        self.delay: float | None = None
        """Seconds to wait before a second copy; ``None`` while too few answers are known."""
        self.hedges = 0
        """Second copies sent."""

    def record(self, seconds: float) -> None:
        """A successful answer took ``seconds``."""
        self._latencies.append(seconds)
        if len(self._latencies) >= LATENCY_MIN_SAMPLES and len(self._latencies) % 10 == 0:
            ordered = sorted(self._latencies)
            p95 = ordered[int(0.95 * (len(ordered) - 1))]
            self.delay = max(HEDGE_MIN_DELAY, 2 * p95)

    async def race(
        self,
        first: Callable[[], Awaitable[T]],
        second: Callable[[], Awaitable[T]],
        delay: float,
        *,
        what: str,
    ) -> T:
        """Run ``first``; if it has not finished after ``delay`` s, run ``second`` too; the first success wins.

        ``what`` names the request in the log line that says a second copy is sent.

        The slower copy is cancelled (its connection is closed), and the outcome of every copy is
        read, so none is left for asyncio to report. When every copy fails, the first error is raised.
        """
        first_copy = asyncio.ensure_future(first())
        tasks = {first_copy}
        try:
            done, _ = await asyncio.wait(tasks, timeout=delay)
            if done:
                return first_copy.result()  # the usual case: answered (or failed) in time, alone
            self.hedges += 1
            logger.info(
                "%s has not answered in %.2f s; sending a second copy (the caller says that is harmless)",
                what,
                delay,
            )
            tasks.add(asyncio.ensure_future(second()))
            pending, first_error = set(tasks), None
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    error = task.exception()
                    if error is None:
                        return task.result()
                    first_error = first_error or error
            assert first_error is not None  # noqa: S101 - every task failed, so one error exists
            raise first_error
        finally:
            await cancel_and_wait(tasks)  # the slower copy: its connection is closed
            for task in tasks:
                if not task.cancelled():
                    task.exception()  # a copy that failed as the other won: its error is read, not reported
