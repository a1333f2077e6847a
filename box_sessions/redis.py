"""Share tokens between the processes of one Box app through Redis: ``pip install "box-sessions[redis]"``.

Example::

    from box_sessions.redis import RedisShare

    share = RedisShare("redis://127.0.0.1:6379/0", prefix="box-sessions")
    async with box_sessions.BoxClient(ccg_auth, shared=share) as client:
        ...  # CCG and JWT: one access token per expiry for every process
    auth = box_sessions.OAuth2Auth(
        client_id="…", client_secret="…", refresh_token="…", token_store=share.token_store("user-42")
    )  # OAuth 2.0: one refresh at a time across processes

What Redis holds, under ``{prefix}:`` (nothing else):

- ``access-token:{digest}``: a CCG or JWT access token with its expiry, the digest standing for
  the Box identity (token URL, client id, subject). The key expires with the token.
- ``access-token:{digest}:lock``: held for at most ``lock_ttl`` by the process asking Box.
- ``oauth2:{key}``: an OAuth 2.0 token pair; it expires 60 days after the last refresh, when Box's
  refresh token does.
- ``oauth2:{key}:lock``: held across load, refresh and save, renewed while its holder lives, so a
  process killed while holding it frees it after ``lock_ttl``.

This module builds on the core's protocols (`box_sessions.Shared`, `box_sessions.SharedTokens`,
`box_sessions.LockingTokenStore`); the core never imports redis. Every Redis call is bounded by
``timeout``, and every failure of Redis becomes `box_sessions.SharedStateError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Iterator
from types import TracebackType
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.lock import Lock
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from . import BoxError, BoxTimeoutError, OAuth2Tokens, SharedStateError, SharedToken, SharedTokens

__all__ = ["RedisShare", "RedisTokenStore"]

logger = logging.getLogger("box_sessions")

T = TypeVar("T")

#: Seconds a Redis call may take by default before it counts as a failure.
DEFAULT_TIMEOUT = 2.0
#: Seconds a lock lives by default when its holder stops renewing it (dies).
DEFAULT_LOCK_TTL = 10.0
#: The longest a process waits by default for another's OAuth 2.0 refresh.
DEFAULT_LOCK_WAIT = 60.0
#: Box's refresh tokens last 60 days: a stored pair is useless after that.
REFRESH_TOKEN_LIFETIME = 60 * 24 * 3600
# Seconds between tries of a lock another process holds.
_LOCK_POLL = 0.05


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


class _Redis:
    """One Redis client with the share's time bound on every call."""

    def __init__(self, client: aioredis.Redis, timeout: float) -> None:
        self.client = client
        self.timeout = timeout

    async def run(self, what: str, call: Awaitable[T]) -> T:
        with _redis_errors(what):
            return await asyncio.wait_for(call, self.timeout)

    def lock(self, name: str, ttl: float) -> Lock:
        # thread_local=False: the lock belongs to a task, and is renewed from another task.
        return Lock(self.client, name, timeout=ttl, blocking=False, thread_local=False)


class _HeldLock:
    """A lock this process took; frees it on `release` (its TTL frees it if that fails)."""

    def __init__(self, redis_: _Redis, lock: Lock) -> None:
        self._redis = redis_
        self._lock = lock

    async def release(self) -> None:
        await self._redis.run("releasing a lock", self._lock.release())


class _RedisTokens:
    """CCG and JWT access tokens in Redis, one per Box identity (`box_sessions.SharedTokens`)."""

    def __init__(self, redis_: _Redis, prefix: str, lock_ttl: float) -> None:
        self._redis = redis_
        self._prefix = prefix
        self._lock_ttl = lock_ttl

    def _key(self, key: str) -> str:
        # A digest: the identity holds the token URL and client id, and a key's length is bounded.
        return f"{self._prefix}:access-token:{hashlib.sha256(key.encode()).hexdigest()[:32]}"

    async def load(self, key: str) -> SharedToken | None:
        raw = await self._redis.run("reading a token", self._redis.client.get(self._key(key)))
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
        await self._redis.run("storing a token", self._redis.client.set(self._key(key), value, px=milliseconds))

    async def try_lock(self, key: str) -> _HeldLock | None:
        lock = self._redis.lock(self._key(key) + ":lock", self._lock_ttl)
        taken = await self._redis.run("taking a lock", lock.acquire(blocking=False))
        return _HeldLock(self._redis, lock) if taken else None

    def __repr__(self) -> str:
        return f"RedisShare.tokens(prefix={self._prefix!r})"


class RedisTokenStore:
    """An OAuth 2.0 token pair in Redis, shared by processes, with the lock `OAuth2Auth` holds across a refresh.

    Made by `RedisShare.token_store`. The lock is renewed every third of ``lock_ttl`` while held,
    so a refresh slower than ``lock_ttl`` keeps it, and a process killed while holding it frees
    it ``lock_ttl`` later. Redis unreachable: `load`, `save` and `lock` raise `SharedStateError`,
    and `OAuth2Auth` does not refresh.
    """

    def __init__(self, redis_: _Redis, *, prefix: str, key: str, lock_ttl: float, lock_wait: float) -> None:
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
            await asyncio.sleep(_LOCK_POLL)

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
        self._redis = _Redis(client, self._timeout)
        self._tokens = _RedisTokens(self._redis, self._prefix, self._lock_ttl)

    @property
    def tokens(self) -> SharedTokens:
        """CCG and JWT access tokens, one per Box identity (what `BoxClient(shared=...)` uses)."""
        return self._tokens

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
