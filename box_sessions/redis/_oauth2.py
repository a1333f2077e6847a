"""An OAuth 2.0 token pair in Redis with the lock `OAuth2Auth` holds across a refresh (a `LockingTokenStore`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator

from redis.asyncio.lock import Lock

from .. import BoxError, BoxTimeoutError, OAuth2Tokens, SharedStateError
from ._calls import LOCK_POLL, RedisCalls

__all__ = ["REFRESH_TOKEN_LIFETIME", "RedisTokenStore"]

logger = logging.getLogger("box_sessions")

#: Box's refresh tokens last 60 days: a stored pair is useless after that.
REFRESH_TOKEN_LIFETIME = 60 * 24 * 3600


class RedisTokenStore:
    """An OAuth 2.0 token pair in Redis, shared by processes, with the lock `OAuth2Auth` holds across a refresh.

    Made by `RedisShare.token_store`. The lock is renewed every third of ``lock_ttl`` while held,
    so a refresh slower than ``lock_ttl`` keeps it, and a process killed while holding it frees
    it ``lock_ttl`` later. Redis unreachable: `load`, `save` and `lock` raise `SharedStateError`,
    and `OAuth2Auth` does not refresh.
    """

    def __init__(self, redis_: RedisCalls, *, prefix: str, key: str, lock_ttl: float, lock_wait: float) -> None:
        self.key = key
        self._redis = redis_
        self._name = f"{prefix}:oauth2:{key}"
        self._prefix = prefix
        self._lock_ttl = lock_ttl
        self._lock_wait = lock_wait

    async def load(self) -> OAuth2Tokens | None:
        """The stored pair, or ``None`` when nothing is stored.

        Raises:
            SharedStateError: Redis failed.
            BoxError: what is stored is not a token pair.
        """
        raw = await self._redis.run("reading the OAuth 2.0 tokens", self._redis.client.get(self._name))
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            return OAuth2Tokens.from_json(data if isinstance(data, dict) else {})
        except ValueError as exc:
            raise BoxError(f"the OAuth 2.0 tokens stored in Redis for {self.key!r} are not usable: {exc}") from None

    async def save(self, tokens: OAuth2Tokens) -> None:
        """Store ``tokens`` for as long as the refresh token lives.

        Raises:
            SharedStateError: Redis failed.
        """
        value = json.dumps(tokens.to_json())
        await self._redis.run(
            "storing the OAuth 2.0 tokens", self._redis.client.set(self._name, value, ex=REFRESH_TOKEN_LIFETIME)
        )

    @contextlib.asynccontextmanager
    async def lock(self) -> AsyncIterator[None]:
        """Hold the pair's lock, waiting at most ``lock_wait`` for another process's refresh.

        Raises:
            SharedStateError: Redis failed.
            BoxTimeoutError: another process held the lock for ``lock_wait`` seconds.
        """
        lock = self._redis.lock(self._name + ":lock", self._lock_ttl)
        await self._acquire(lock)
        renewal = asyncio.get_running_loop().create_task(self._renew(lock))
        try:
            yield
        finally:
            renewal.cancel()
            await asyncio.wait({renewal})
            try:
                await self._redis.run("releasing the OAuth 2.0 lock", lock.release())
            except SharedStateError as exc:
                logger.warning("%s; the lock frees itself within %g s", exc, self._lock_ttl)

    async def _acquire(self, lock: Lock) -> None:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self._lock_wait
        while not await self._redis.run("taking the OAuth 2.0 lock", lock.acquire(blocking=False)):
            if loop.time() >= give_up:
                raise BoxTimeoutError(
                    f"another process has held the OAuth 2.0 lock of {self.key!r} for {self._lock_wait:g} s"
                )
            await asyncio.sleep(LOCK_POLL)

    async def _renew(self, lock: Lock) -> None:
        while True:
            await asyncio.sleep(self._lock_ttl / 3)
            try:
                await self._redis.run("renewing the OAuth 2.0 lock", lock.extend(self._lock_ttl, replace_ttl=True))
            except SharedStateError as exc:
                logger.warning("%s; it may expire while this process refreshes", exc)
                return

    def __repr__(self) -> str:
        return f"RedisTokenStore(key={self.key!r}, prefix={self._prefix!r})"
