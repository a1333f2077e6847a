"""`RedisShare`: the state the processes of one Box app share, in Redis, one facet per concern."""

from __future__ import annotations

import math
from types import TracebackType
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from .. import SharedTokens
from ._calls import RedisCalls
from ._oauth2 import RedisTokenStore
from ._pacing import RedisPacing
from ._tokens import RedisTokens

__all__ = ["DEFAULT_LOCK_TTL", "DEFAULT_LOCK_WAIT", "DEFAULT_TIMEOUT", "RedisShare"]

#: Seconds a Redis call may take by default before it counts as a failure.
DEFAULT_TIMEOUT = 2.0
#: Seconds a lock lives by default when its holder stops renewing it (dies).
DEFAULT_LOCK_TTL = 10.0
#: The longest a process waits by default for another's OAuth 2.0 refresh.
DEFAULT_LOCK_WAIT = 60.0


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

    Args:
        url: A ``redis://``, ``rediss://`` (TLS) or ``unix://`` URL, as redis-py takes it
            (``rediss://user:password@host:6380/0``). The password is never shown.
        client: A ``redis.asyncio.Redis`` of yours instead of ``url``; closing it stays yours.
        prefix: Every key starts with ``{prefix}:`` (give a Redis ACL user only these keys).
        timeout: Seconds a Redis call may take before it counts as a failure.
        lock_ttl: Seconds a lock outlives a holder that died.
        lock_wait: The longest a process waits for another's OAuth 2.0 refresh.

    Raises:
        TypeError, ValueError: an argument is of the wrong type or value, or neither or both of
            ``url`` and ``client`` are given.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: aioredis.Redis | None = None,
        prefix: str = "box-sessions",
        timeout: float = DEFAULT_TIMEOUT,
        lock_ttl: float = DEFAULT_LOCK_TTL,
        lock_wait: float = DEFAULT_LOCK_WAIT,
    ) -> None:
        if (url is None) == (client is None):
            raise TypeError("RedisShare needs exactly one of url and client")
        if client is not None and not isinstance(client, aioredis.Redis):
            raise TypeError(f"client must be a redis.asyncio.Redis, got {type(client).__name__}")
        self._prefix = _non_empty(prefix, "prefix")
        self._timeout = _positive(timeout, "timeout")
        self._lock_ttl = _positive(lock_ttl, "lock_ttl")
        self._lock_wait = _positive(lock_wait, "lock_wait")
        self._shown = "client=<redis.asyncio.Redis>"
        if url is not None:
            url = _non_empty(url, "url")
            scheme = urlsplit(url).scheme
            if scheme not in ("redis", "rediss", "unix"):
                raise ValueError(
                    f"url must be a redis://, rediss:// or unix:// URL, got a {scheme or 'schemeless'} URL"
                )
            self._shown = f"{_without_password(url)!r}"
            # No retries of its own: each call is bounded here, and failures are handled above.
            # redis-py before 6 checked only the certificate of a rediss:// server, not its name.
            tls = {"ssl_check_hostname": True} if scheme == "rediss" else {}
            client = aioredis.Redis.from_url(
                url,
                socket_timeout=self._timeout,
                socket_connect_timeout=self._timeout,
                retry=Retry(NoBackoff(), 0),
                **tls,
            )
        assert client is not None  # noqa: S101 - one of the two is given, checked above
        self._owns_client = url is not None
        self._redis = RedisCalls(client, self._timeout)
        self._tokens = RedisTokens(self._redis, self._prefix, self._lock_ttl)
        self._pacing = RedisPacing(self._redis, self._prefix)

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
            TypeError, ValueError: ``key`` is not a non-empty ``str``.
        """
        key = _non_empty(key, "key")
        return RedisTokenStore(
            self._redis, prefix=self._prefix, key=key, lock_ttl=self._lock_ttl, lock_wait=self._lock_wait
        )

    async def aclose(self) -> None:
        """Close the Redis connections, if this share made the client (from ``url``)."""
        if self._owns_client:
            await self._redis.client.aclose()

    async def __aenter__(self) -> RedisShare:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"RedisShare({self._shown}, prefix={self._prefix!r})"
