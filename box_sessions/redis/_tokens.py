"""CCG and JWT access tokens in Redis, one per Box identity: the `box_sessions.SharedTokens` of a `RedisShare`."""

from __future__ import annotations

import hashlib
import json

from .. import SharedToken
from ._calls import RedisCalls
from ._lock import LockScripts, RedisLock

__all__ = ["RedisTokens"]


class _HeldLock:
    """A lock this process took; frees it on `release` (its time to live frees it if that fails)."""

    def __init__(self, lock: RedisLock) -> None:
        self._lock = lock

    async def release(self) -> None:
        # False: it expired under this process (a token request slower than lock_ttl), and another
        # process may hold it now: nothing to free, and Redis did not fail.
        await self._lock.release("releasing a lock")


class RedisTokens:
    """CCG and JWT access tokens in Redis, one per Box identity (`box_sessions.SharedTokens`)."""

    def __init__(self, redis_: RedisCalls, locks: LockScripts, prefix: str, lock_ttl: float) -> None:
        self._redis = redis_
        self._locks = locks
        self._prefix = prefix
        self._lock_ttl = lock_ttl

    def _key(self, key: str) -> str:
        # A digest: the identity holds the token URL and client id, and a key's length is bounded.
        # In braces, Redis's hash tag: the token and its lock live in one slot of a cluster.
        return f"{self._prefix}:access-token:{{{hashlib.sha256(key.encode()).hexdigest()[:32]}}}"

    async def load(self, key: str) -> SharedToken | None:
        raw = await self._redis.run("reading a token", lambda client: client.get(self._key(key)))
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            return SharedToken(
                access_token=str(data["access_token"]),
                expires_at=float(data["expires_at"]),
                refresh_at=float(data["refresh_at"]),
            )
        except (TypeError, ValueError, KeyError):
            return None  # not what this module stores: ask Box

    async def save(self, key: str, token: SharedToken, *, ttl: float) -> None:
        value = json.dumps(
            {"access_token": token.access_token, "expires_at": token.expires_at, "refresh_at": token.refresh_at}
        )
        milliseconds = max(1, int(ttl * 1000))
        await self._redis.run("storing a token", lambda client: client.set(self._key(key), value, px=milliseconds))

    async def try_lock(self, key: str) -> _HeldLock | None:
        lock = RedisLock(self._redis, self._locks, self._key(key) + ":lock", self._lock_ttl)
        return _HeldLock(lock) if await lock.acquire("taking a lock") else None

    def __repr__(self) -> str:
        return f"RedisShare.tokens(prefix={self._prefix!r})"
