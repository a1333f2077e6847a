"""The gate: requests wait for a connection in our own first-in-first-out queue, never in httpcore's pool.

httpcore's pool, asked for more connections than it may open, keeps the extra requests in a list
and walks all of them every time a connection is returned: with a thousand requests waiting, that
bookkeeping costs more CPU than the requests themselves, and it grows with the square of the queue.
A FastAPI app that awaits many single calls on one shared client queues exactly so. The gate
admits at most the pool's size at once, in arrival order, at a constant cost per request; the pool
then always has a connection free.
"""

from __future__ import annotations

import asyncio
import collections
import sys
from types import TracebackType

from .._http import httpx
from .._tasks import time_limit

__all__ = ["DEFAULT_POOL_SIZE", "Gate", "pool_size"]

#: The pool size assumed when an `httpx.AsyncClient`'s own cannot be read (a custom transport):
#: httpx's default ``Limits(max_connections=100)``.
DEFAULT_POOL_SIZE = 100


def pool_size(http_client: httpx.AsyncClient) -> int | None:
    """How many connections ``http_client`` may open at once; ``None`` when it has no limit.

    Read from httpx's default transport (``httpx.Limits.max_connections``); for any other
    transport, `DEFAULT_POOL_SIZE`.
    """
    # httpx offers no public way to read the limits back; its transport keeps them in its pool.
    pool = getattr(getattr(http_client, "_transport", None), "_pool", None)
    size = getattr(pool, "_max_connections", DEFAULT_POOL_SIZE)
    if not isinstance(size, int) or size < 1:
        return DEFAULT_POOL_SIZE
    return None if size >= sys.maxsize else size  # httpcore's stand-in for "no limit"


class Gate:
    """At most ``size`` requests at once; the others wait in arrival order.

    A waiter that times out or is cancelled leaves the queue; a place handed to a waiter that was
    cancelled at that very moment passes on to the next one, so no place is ever lost.

    Args:
        size: Requests admitted at once; ``None``: no limit.
    """

    def __init__(self, size: int | None) -> None:
        self.size = size
        self.active = 0
        """Requests admitted and not yet done."""
        self._queue: collections.deque[asyncio.Future[None]] = collections.deque()
        self._waiting = 0  # futures in the queue still waiting (cancelled ones stay until popped)

    @property
    def waiting(self) -> int:
        """Requests waiting for a place."""
        return self._waiting

    def slot(self, timeout: float | None) -> _Slot:
        """``async with gate.slot(timeout):`` holds a place for the block.

        Raises:
            httpx.PoolTimeout: no place came free within ``timeout`` seconds (``None``: no limit),
                as httpx raises when its pool has no connection in time.
        """
        return _Slot(self, timeout)

    async def _enter(self, timeout: float | None) -> None:
        if self.size is None or (self.active < self.size and not self._waiting):
            self.active += 1
            return
        place = asyncio.get_running_loop().create_future()
        self._queue.append(place)
        self._waiting += 1
        try:
            async with time_limit(timeout):
                await place
        except BaseException as exc:
            if place.done() and not place.cancelled():
                self._leave()  # handed a place just as it gave up: pass it on
            else:
                self._waiting -= 1
                place.cancel()
            if isinstance(exc, TimeoutError):
                raise httpx.PoolTimeout(f"no connection came free within {timeout:g} s") from None
            raise

    def _leave(self) -> None:
        while self._queue:
            place = self._queue.popleft()
            if not place.done():
                self._waiting -= 1
                place.set_result(None)  # the place passes on: `active` stays
                return
        self.active -= 1

    def __repr__(self) -> str:
        return f"Gate(size={self.size}, active={self.active}, waiting={self._waiting})"


class _Slot:
    __slots__ = ("_gate", "_timeout")

    def __init__(self, gate: Gate, timeout: float | None) -> None:
        self._gate = gate
        self._timeout = timeout

    async def __aenter__(self) -> None:
        await self._gate._enter(self._timeout)  # noqa: SLF001 - the gate's own helper

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._gate._leave()  # noqa: SLF001 - the gate's own helper
