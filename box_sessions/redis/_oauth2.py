"""An OAuth 2.0 token pair in Redis with the lock `OAuth2Auth` holds across a refresh (a `LockingTokenStore`).

Box's refresh tokens work once: a pair that Redis loses, or a spent one it keeps, logs a user out.
So the pair is kept as Redis must keep it:

- **No time to live.** Under ``volatile-*`` eviction (the managed services' default) a key
  without one is never evicted. A share warns once, naming the policy, when Redis's
  ``maxmemory-policy`` is ``allkeys-*``, which may evict it all the same.
- **A save that fails is tried again on a fresh connection**, for up to ``lock_wait`` (a
  connection opened before a restart fails once; Redis back a second later takes the save).
- **Its lock is never evicted either, and is renewed while held.** The lock's lease is in its
  value, not in a time to live (see `RedisLock`): a lock with a TTL, untouched between renewals,
  was the first key ``volatile-lru`` evicted during a refresh, and a second process then refreshed
  with the refresh token the first had just spent.

The pair and its lock share a hash tag (``{key}``), so they live on one node of a cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator

from .. import BoxError, BoxTimeoutError, OAuth2Tokens, SharedStateError
from ._calls import LOCK_POLL, RedisCalls
from ._lock import LockScripts, RedisLock

__all__ = ["EVICTING_POLICIES", "RedisTokenStore"]

logger = logging.getLogger("box_sessions")

#: The ``maxmemory-policy`` values under which Redis may evict a key without a time to live.
EVICTING_POLICIES = ("allkeys-lru", "allkeys-lfu", "allkeys-random")
#: Seconds between tries of a save that failed.
_SAVE_RETRY = 0.1


class RedisTokenStore:
    """An OAuth 2.0 token pair in Redis, shared by processes, with the lock `OAuth2Auth` holds across a refresh.

    Made by `RedisShare.token_store`. The lock is renewed every third of ``lock_ttl`` while held
    (and at once again after a renewal Redis did not answer), so a refresh slower than
    ``lock_ttl`` keeps it, and a process killed while holding it frees it ``lock_ttl`` later.
    Redis unreachable: `load`, `save` and `lock` raise `SharedStateError`, and `OAuth2Auth` does
    not refresh.
    """

    def __init__(
        self,
        redis_: RedisCalls,
        locks: LockScripts,
        *,
        prefix: str,
        key: str,
        lock_ttl: float,
        lock_wait: float,
        policy: _PolicyCheck,
    ) -> None:
        self.key = key
        self._redis = redis_
        self._locks = locks
        self._name = f"{prefix}:oauth2:{{{key}}}"
        self._prefix = prefix
        self._lock_ttl = lock_ttl
        self._lock_wait = lock_wait
        self._policy = policy

    async def load(self) -> OAuth2Tokens | None:
        """The stored pair, or ``None`` when nothing is stored.

        Raises:
            SharedStateError: Redis failed.
            BoxError: what is stored is not a token pair.
        """
        await self._policy.check(self._redis, self.key)
        raw = await self._redis.run("reading the OAuth 2.0 tokens", lambda client: client.get(self._name))
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            return OAuth2Tokens.from_json(data if isinstance(data, dict) else {})
        except ValueError as exc:
            raise BoxError(f"the OAuth 2.0 tokens stored in Redis for {self.key!r} are not usable: {exc}") from None

    async def save(self, tokens: OAuth2Tokens) -> None:
        """Store ``tokens``, without a time to live; a failure is tried again, on a fresh connection, for ``lock_wait``.

        Raises:
            SharedStateError: Redis failed for ``lock_wait`` seconds.
        """
        value = json.dumps(tokens.to_json())
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self._lock_wait
        while True:
            try:
                await self._redis.run("storing the OAuth 2.0 tokens", lambda client: client.set(self._name, value))
            except SharedStateError as exc:
                if exc.refusal is not None or loop.time() >= give_up:
                    raise  # Redis answered and refused: trying again would not change it
                await asyncio.sleep(_SAVE_RETRY)
            else:
                return

    @contextlib.asynccontextmanager
    async def lock(self) -> AsyncIterator[None]:
        """Hold the pair's lock, waiting at most ``lock_wait`` for another process's refresh.

        Raises:
            SharedStateError: Redis failed.
            BoxTimeoutError: another process held the lock for ``lock_wait`` seconds.
        """
        lock = RedisLock(self._redis, self._locks, self._name + ":lock", self._lock_ttl)
        await self._acquire(lock)
        renewal = asyncio.get_running_loop().create_task(self._renew(lock))
        try:
            yield
        finally:
            renewal.cancel()
            await asyncio.wait({renewal})
            await self._release(lock)

    async def _acquire(self, lock: RedisLock) -> None:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self._lock_wait
        while not await lock.acquire("taking the OAuth 2.0 lock"):
            if loop.time() >= give_up:
                raise BoxTimeoutError(
                    f"another process has held the OAuth 2.0 lock of {self.key!r} for {self._lock_wait:g} s"
                )
            await asyncio.sleep(LOCK_POLL)

    async def _release(self, lock: RedisLock) -> None:
        try:
            freed = await lock.release("releasing the OAuth 2.0 lock")
        except SharedStateError as exc:
            logger.warning("%s; the lock frees itself within %g s", exc, self._lock_ttl)
            return
        if not freed:
            logger.warning(
                "The OAuth 2.0 lock of %r had expired before its holder released it: another process may have "
                "refreshed meanwhile",
                self.key,
            )

    async def _renew(self, lock: RedisLock) -> None:
        """Renew the lock every third of its lease while held; after a failure, again at once, until it answers.

        A renewal that Redis did not answer (a stall, a restart) is no reason to stop: the lease has
        time left, and a renewal that arrives in it keeps the lock from a process that would send
        the refresh token this one is spending. Only a lock another process holds now ends it.
        """
        period = self._lock_ttl / 3
        failing = False
        while True:
            await asyncio.sleep(LOCK_POLL if failing else period)
            try:
                renewed = await lock.extend("renewing the OAuth 2.0 lock")
            except SharedStateError as exc:
                if not failing:
                    logger.warning("%s; trying again while this process refreshes", exc)
                failing = True
                continue
            if not renewed:
                logger.warning("The OAuth 2.0 lock of %r expired while this process held it", self.key)
                return
            if failing:
                logger.info("Redis renewed the OAuth 2.0 lock of %r again", self.key)
            failing = False

    def __repr__(self) -> str:
        return f"RedisTokenStore(key={self.key!r}, prefix={self._prefix!r})"


class _PolicyCheck:
    """Reads Redis's ``maxmemory-policy`` once per share, and warns once when it may evict the OAuth 2.0 pairs."""

    def __init__(self) -> None:
        self._done = False

    async def check(self, redis_: RedisCalls, key: str) -> None:
        if self._done:
            return
        self._done = True
        try:
            info = await redis_.run("reading its maxmemory-policy", lambda client: client.info("memory"))
        except SharedStateError as exc:
            logger.info(
                "Could not read Redis's maxmemory-policy (%s); the OAuth 2.0 pairs need one that keeps them", exc
            )
            return
        policies = {str(v.get("maxmemory_policy")) for v in _per_node(info)}
        evicting = sorted(policies & set(EVICTING_POLICIES))
        if evicting:
            logger.warning(
                "Redis's maxmemory-policy is %s: when it is full it may evict the OAuth 2.0 pair of %r, and the "
                "next process would need the user to log in again; use volatile-lru (the pairs carry no time to "
                "live, so it never evicts them) or noeviction",
                ", ".join(evicting),
                key,
            )


def _per_node(info: object) -> list[dict[str, object]]:
    """``INFO memory`` as a list of one dict per node (a cluster client answers a dict of them)."""
    if isinstance(info, dict) and "maxmemory_policy" in info:
        return [info]
    if isinstance(info, dict):
        return [value for value in info.values() if isinstance(value, dict)]
    return []
