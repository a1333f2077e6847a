"""Redis calls bounded in time, with every failure of Redis raised as `box_sessions.SharedStateError`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Iterator
from typing import TypeVar

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.lock import Lock

from .. import SharedStateError

__all__ = ["LOCK_POLL", "RedisCalls"]

T = TypeVar("T")

#: Seconds between tries of a lock another process holds.
LOCK_POLL = 0.05


def _describe(what: str, exc: BaseException) -> str:
    # Timeouts first: from Python 3.11 asyncio's is the builtin TimeoutError, an OSError.
    if isinstance(exc, (redis.exceptions.TimeoutError, asyncio.TimeoutError)):
        return f"Redis did not answer {what} in time"
    # Redis's texts for connection failures name the host and port and help; others (a script's
    # error) may quote arguments, so only their kind is said.
    if isinstance(exc, (redis.exceptions.ConnectionError, OSError)):
        return f"Redis failed {what}: {type(exc).__name__}: {exc}"
    return f"Redis failed {what}: {type(exc).__name__}"


@contextlib.contextmanager
def _redis_errors(what: str) -> Iterator[None]:
    """Raise a failure of Redis in the block as `SharedStateError`, chained."""
    try:
        yield
    except (redis.exceptions.RedisError, OSError, asyncio.TimeoutError) as exc:
        raise SharedStateError(_describe(what, exc)) from exc


class RedisCalls:
    """One Redis client with the share's time bound on every call; shared by every part of a `RedisShare`."""

    def __init__(self, client: aioredis.Redis, timeout: float) -> None:
        self.client = client
        self.timeout = timeout

    async def run(self, what: str, call: Awaitable[T]) -> T:
        with _redis_errors(what):
            return await asyncio.wait_for(call, self.timeout)

    def lock(self, name: str, ttl: float) -> Lock:
        # thread_local=False: the lock belongs to a task, and is renewed from another task.
        return Lock(self.client, name, timeout=ttl, blocking=False, thread_local=False)
