"""A lock in Redis that frees itself: one key set only if absent, with a time to live and a token only its holder knows.

Written here rather than taken from redis-py (``redis.asyncio.lock.Lock``): that class keeps its
scripts on the class, registered with the first client that ever used it, so a share over
valkey-py and a share over redis-py in one process would run each other's scripts and miss each
other's "no such script" errors. These scripts belong to the share that registered them.
"""

from __future__ import annotations

import secrets

from ._calls import Client, RedisCalls

__all__ = ["LockScripts", "RedisLock"]

#: KEYS: the lock. ARGV: the holder's token. Deletes the lock only if the token is the holder's.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
#: KEYS: the lock. ARGV: the holder's token, milliseconds. Renews the lock only if the token is the holder's.
_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


class LockScripts:
    """The lock's scripts, registered once on a share's client (sent by digest, loaded again after a restart)."""

    def __init__(self, client: Client) -> None:
        self.release = client.register_script(_RELEASE)
        self.extend = client.register_script(_EXTEND)


class RedisLock:
    """One holder's lock of ``name``: taken without waiting, renewed and released only by its holder.

    Args:
        calls: The share's Redis calls.
        scripts: The share's lock scripts.
        name: The lock's key.
        ttl: Seconds the lock lives unless renewed: a holder that dies frees it after that.
    """

    def __init__(self, calls: RedisCalls, scripts: LockScripts, name: str, ttl: float) -> None:
        self.name = name
        self._calls = calls
        self._scripts = scripts
        self._milliseconds = max(1, int(ttl * 1000))
        self._token = secrets.token_hex(16)

    async def acquire(self, what: str) -> bool:
        """Take the lock if nobody holds it; whether it was taken."""
        taken = await self._calls.run(
            what, lambda client: client.set(self.name, self._token, nx=True, px=self._milliseconds)
        )
        return bool(taken)

    async def extend(self, what: str) -> bool:
        """Renew the lock for its whole time to live; ``False`` when it expired (another may hold it now)."""
        renewed = await self._calls.run(
            what,
            lambda client: self._scripts.extend(
                keys=[self.name], args=[self._token, self._milliseconds], client=client
            ),
        )
        return bool(renewed)

    async def release(self, what: str) -> bool:
        """Free the lock; ``False`` when it had expired (freeing another holder's is never done)."""
        freed = await self._calls.run(
            what, lambda client: self._scripts.release(keys=[self.name], args=[self._token], client=client)
        )
        return bool(freed)
