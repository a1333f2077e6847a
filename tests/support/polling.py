"""Bounded waits on a condition polled at an interval: a test waits for what it needs, never sleeps for luck."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def _tries(timeout: float, interval: float) -> int:
    return max(1, math.ceil(timeout / interval)) + 1


def wait_until(condition: Callable[[], T | None], *, what: str, timeout: float, interval: float = 0.05) -> T:
    """Call ``condition`` every ``interval`` s until it returns something truthy, and return that.

    Bounded twice: at most ``timeout`` seconds, and at most ``timeout / interval + 1`` calls.

    Args:
        condition: Returns a falsy value while the wait goes on; it should not raise for a
            state that may still change (a server that does not answer yet).
        what: What is awaited, for the error.
        timeout: Seconds to wait at most.
        interval: Seconds between calls.

    Raises:
        TimeoutError: the condition stayed falsy; the message names ``what`` and the last value.
    """
    deadline = time.monotonic() + timeout
    last: T | None = None
    for _ in range(_tries(timeout, interval)):
        last = condition()
        if last:
            return last
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    raise TimeoutError(f"{what}: not within {timeout:g} s (last seen: {last!r})")
