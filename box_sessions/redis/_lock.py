"""A lock in Redis that frees itself: its lease in its value, not in a time to live, and a token only its holder knows.

The lock's key carries no time to live: under ``volatile-*`` eviction (the managed services'
default) Redis never evicts it. A lock with a TTL was evicted while its holder refreshed an OAuth
2.0 token (untouched between renewals, it is the least recently used key), a second process took
it and sent the refresh token Box had just spent. The value is ``<token>:<until>``, ``until`` in
milliseconds of Redis's own clock (``TIME``): a lock whose lease has passed is free to take, so a
holder that dies frees it after its lease all the same. A value without a lease (a lock written
with a TTL by an older version) counts as held until its TTL ends it.

Written here rather than taken from redis-py (``redis.asyncio.lock.Lock``): that class keeps its
scripts on the class, registered with the first client that ever used it, so a share over
valkey-py and a share over redis-py in one process would run each other's scripts and miss each
other's "no such script" errors. These scripts belong to the share that registered them.
"""

from __future__ import annotations

import secrets

from ._calls import Client, RedisCalls

__all__ = ["LockScripts", "RedisLock"]

#: Redis's clock in milliseconds, and the lease of the lock in KEYS[1] (``nil`` without one).
_NOW_AND_LEASE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local held = redis.call('GET', KEYS[1])
local holder, lease = nil, nil
if held then
    holder, lease = string.match(held, '^(.*):(%d+)$')
    lease = tonumber(lease)
end
"""
#: KEYS: the lock. ARGV: the holder's token, milliseconds. Takes it if absent or its lease has passed.
_ACQUIRE = (
    _NOW_AND_LEASE
    + """
if held and (lease == nil or lease > now) then return 0 end
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. (now + tonumber(ARGV[2])))
return 1
"""
)
#: KEYS: the lock. ARGV: the holder's token, milliseconds. Renews the lease only if the token is the holder's.
_EXTEND = (
    _NOW_AND_LEASE
    + """
if holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. (now + tonumber(ARGV[2])))
return 1
"""
)
#: KEYS: the lock. ARGV: the holder's token. Deletes the lock only if the token is the holder's.
_RELEASE = """
local held = redis.call('GET', KEYS[1])
if held and string.match(held, '^(.*):%d+$') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class LockScripts:
    """The lock's scripts, registered once on a share's client (sent by digest, loaded again after a restart)."""

    def __init__(self, client: Client) -> None:
        self.acquire = client.register_script(_ACQUIRE)
        self.release = client.register_script(_RELEASE)
        self.extend = client.register_script(_EXTEND)


class RedisLock:
    """One holder's lock of ``name``: taken without waiting, renewed and released only by its holder.

    Args:
        calls: The share's Redis calls.
        scripts: The share's lock scripts.
        name: The lock's key.
        ttl: Seconds of the lock's lease unless renewed: a holder that dies frees it after that.
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
            what,
            lambda client: self._scripts.acquire(
                keys=[self.name], args=[self._token, self._milliseconds], client=client
            ),
        )
        return bool(taken)

    async def extend(self, what: str) -> bool:
        """Renew the lock's whole lease; ``False`` when another holds it now (its lease passed and it was taken)."""
        renewed = await self._calls.run(
            what,
            lambda client: self._scripts.extend(
                keys=[self.name], args=[self._token, self._milliseconds], client=client
            ),
        )
        return bool(renewed)

    async def release(self, what: str) -> bool:
        """Free the lock; ``False`` when another holds it now (freeing another holder's is never done)."""
        freed = await self._calls.run(
            what, lambda client: self._scripts.release(keys=[self.name], args=[self._token], client=client)
        )
        return bool(freed)
