"""`RedisShare`: the state the processes of one Box app share, in Redis, one facet per concern."""

from __future__ import annotations

import math
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import BlockingConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from .. import SharedTokens
from ._calls import RedisCalls
from ._lock import LockScripts
from ._oauth2 import RedisTokenStore, _PolicyCheck
from ._pacing import RedisPacing
from ._tokens import RedisTokens

__all__ = ["DEFAULT_LOCK_TTL", "DEFAULT_LOCK_WAIT", "DEFAULT_MAX_CONNECTIONS", "DEFAULT_TIMEOUT", "RedisShare"]

#: Seconds a Redis call may take by default before it counts as a failure.
DEFAULT_TIMEOUT = 2.0
#: Seconds a lock lives by default when its holder stops renewing it (dies).
DEFAULT_LOCK_TTL = 10.0
#: The longest a process waits by default for another's OAuth 2.0 refresh.
DEFAULT_LOCK_WAIT = 60.0
#: Connections a share opens at most, per process (per node of a cluster), by default. A bulk job
#: keeps up to 16 batches in flight; each needs Redis for two short scripts around a request of a
#: few hundred milliseconds, so 8 connections serve them with room to spare, and a Redis with a
#: small ``maxmemory`` is not filled with connection buffers.
DEFAULT_MAX_CONNECTIONS = 8


def _positive(value: object, argument: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{argument} must be a number of seconds, got {type(value).__name__}")
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{argument} must be a positive number of seconds, got {value!r}")
    return float(value)


def _non_empty(value: object, argument: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{argument} must be a str, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{argument} must not be empty")
    return value


def _key_part(value: object, argument: str) -> str:
    """A non-empty ``str`` without braces: the share puts key parts in a Redis hash tag (``{...}``)."""
    text = _non_empty(value, argument)
    if "{" in text or "}" in text:
        raise ValueError(f"{argument} must not hold braces: the share uses them for Redis Cluster's hash tags")
    return text


def _is_client(client: object) -> bool:
    """A client of redis-py's asyncio API: redis-py's (``Redis``, Sentinel's ``master_for``, ``RedisCluster``), or
    valkey-py's (``Valkey``, ``ValkeyCluster``), a fork of redis-py with the same API."""
    if isinstance(client, (aioredis.Redis, RedisCluster)):
        return True
    return type(client).__module__.startswith("valkey.asyncio") and type(client).__name__ in ("Valkey", "ValkeyCluster")


def _without_password(url: str) -> str:
    """``url`` with its password (and a user-info token) shown as ``***``."""
    parts = urlsplit(url)
    if parts.password is None and not (parts.username and "@" in parts.netloc):
        return url
    host = parts.netloc.rpartition("@")[2]
    user = parts.username if parts.password is not None else None
    userinfo = f"{user}:***" if user else ":***"
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{host}"))


class RedisShare:
    """State shared by the processes of one Box app, in Redis: give it to `BoxClient(shared=...)`.

    Works with Redis and Valkey as companies run them: a single node, a master behind Sentinel
    (``client=Sentinel(...).master_for(name)``), a cluster (``cluster=True``, or
    ``client=RedisCluster(...)``): every key one script or lock touches shares a hash tag, so it
    lives on one node. See the README's *Several processes* for what each costs in a failover.

    Args:
        url: A ``redis://``, ``rediss://`` (TLS) or ``unix://`` URL, as redis-py takes it
            (``rediss://user:password@host:6380/0``); with ``cluster=True`` any node of a cluster.
            The password is never shown.
        client: Your own client instead of ``url``: a ``redis.asyncio.Redis`` (Sentinel's
            ``master_for`` gives one), a ``redis.asyncio.cluster.RedisCluster``, or valkey-py's
            ``Valkey`` or ``ValkeyCluster``. Closing it stays yours, and its connection pool is
            yours to bound.
        cluster: ``url`` names a node of a Redis Cluster.
        prefix: Every key starts with ``{prefix}:`` (give a Redis ACL user only these keys).
        timeout: Seconds a Redis call may take before it counts as a failure.
        lock_ttl: Seconds a lock outlives a holder that died.
        lock_wait: The longest a process waits for another's OAuth 2.0 refresh; also how long a
            save of a refreshed pair is tried again.
        max_connections: Redis calls the share makes at once, per process, and so the
            connections it opens at most (per node of a cluster); a call waits for a free one
            within ``timeout``, with any client (redis-py's cluster client would refuse it at once
            with ``MaxConnectionsError``).

    Raises:
        TypeError, ValueError: an argument is of the wrong type or value, or neither or both of
            ``url`` and ``client`` are given.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any = None,
        cluster: bool = False,
        prefix: str = "box-sessions",
        timeout: float = DEFAULT_TIMEOUT,
        lock_ttl: float = DEFAULT_LOCK_TTL,
        lock_wait: float = DEFAULT_LOCK_WAIT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        if (url is None) == (client is None):
            raise TypeError("RedisShare needs exactly one of url and client")
        if client is not None and not _is_client(client):
            raise TypeError(
                "client must be a redis.asyncio.Redis (or Sentinel's master_for), a redis.asyncio.cluster."
                f"RedisCluster, or valkey-py's Valkey or ValkeyCluster, got {type(client).__name__}"
            )
        if isinstance(max_connections, bool) or not isinstance(max_connections, int):
            raise TypeError(f"max_connections must be an int, got {type(max_connections).__name__}")
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, got {max_connections!r}")
        self._prefix = _key_part(prefix, "prefix")
        self._timeout = _positive(timeout, "timeout")
        self._lock_ttl = _positive(lock_ttl, "lock_ttl")
        self._lock_wait = _positive(lock_wait, "lock_wait")
        kind = type(client)
        self._shown = f"client=<{kind.__module__.rsplit('.', 1)[0]}.{kind.__name__}>"  # redis.asyncio.Redis
        remake = None
        if url is not None:
            url = _non_empty(url, "url")
            scheme = urlsplit(url).scheme
            if scheme not in ("redis", "rediss", "unix"):
                raise ValueError(
                    f"url must be a redis://, rediss:// or unix:// URL, got a {scheme or 'schemeless'} URL"
                )
            self._shown = f"{_without_password(url)!r}" + (", cluster=True" if cluster else "")
            settings = _client_settings(scheme, self._timeout, max_connections)

            def remake() -> Any:
                if cluster:
                    return RedisCluster.from_url(url, **settings)
                # The client owns the pool: closing the client closes its connections.
                return aioredis.Redis.from_pool(BlockingConnectionPool.from_url(url, **settings))

            client = remake()
        self._redis = RedisCalls(client, self._timeout, prefix=self._prefix, remake=remake, max_calls=max_connections)
        self._locks = LockScripts(client)
        self._tokens = RedisTokens(self._redis, self._locks, self._prefix, self._lock_ttl)
        self._pacing = RedisPacing(self._redis, self._prefix)
        self._policy = _PolicyCheck()

    @property
    def tokens(self) -> SharedTokens:
        """CCG and JWT access tokens, one per Box identity (what `BoxClient(shared=...)` uses)."""
        return self._tokens

    @property
    def pacing(self) -> RedisPacing:
        """One rate limit and one 429 cool-down per Box identity for every process (`BoxClient(shared=...)` uses it)."""
        return self._pacing

    def token_store(self, key: str) -> RedisTokenStore:
        """A token store for `OAuth2Auth` keeping one user's pair under ``key``, locked across refreshes.

        Args:
            key: Names the pair, e.g. your user's id (``"user-42"``). Every process refreshing
                that user's tokens uses the same key.

        Raises:
            TypeError, ValueError: ``key`` is not a non-empty ``str``, or holds a brace.
        """
        key = _key_part(key, "key")
        return RedisTokenStore(
            self._redis,
            self._locks,
            prefix=self._prefix,
            key=key,
            lock_ttl=self._lock_ttl,
            lock_wait=self._lock_wait,
            policy=self._policy,
        )

    async def aclose(self) -> None:
        """Close the Redis connections, if this share made the client (from ``url``).

        A share used in several event loops (``asyncio.run`` after ``asyncio.run``) closes each
        loop's connections as that loop ends; this closes the running loop's.
        """
        await self._redis.aclose()

    async def __aenter__(self) -> RedisShare:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"RedisShare({self._shown}, prefix={self._prefix!r})"


def _client_settings(scheme: str, timeout: float, max_connections: int) -> dict[str, Any]:
    """redis-py's options for a client the share makes from a URL."""
    return {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        # A connection that Redis closed (a restart, a failover) fails once: its call is tried once
        # more, on a fresh connection. Each call is bounded by the share's timeout all the same.
        "retry": Retry(NoBackoff(), 1),
        "retry_on_error": [redis.exceptions.ConnectionError],
        "max_connections": max_connections,
        # redis-py before 6 checked only the certificate of a rediss:// server, not its name.
        **({"ssl_check_hostname": True} if scheme == "rediss" else {}),
    }
