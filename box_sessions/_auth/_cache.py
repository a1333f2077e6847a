"""The token cache every auth method shares: fetched before first use, refreshed ahead of expiry, single flight.

The transport asks an auth object for a token with `BoxAuth.get_token` and drops a token Box
refused with `BoxAuth.invalidate`: that is the whole protocol between the two layers. However
many requests need a token at once, one token request is made. Each method only says how to get
a token (`BoxAuth._fetch`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import ClassVar

import attrs
import httpx

from .._clock import Clock
from ._grant import TokenGrant, grant_from_response

__all__ = ["REFRESH_MARGIN", "BoxAuth", "TokenPoster", "TokenRequester"]

# Refresh this long before a token expires (capped at half its lifetime for short-lived tokens),
# so that a request never leaves with a token that expires on the way.
REFRESH_MARGIN = 60.0

#: What the transport gives: posts a form to the token endpoint (with the client's retries) and
#: returns the 2xx answer.
TokenPoster = Callable[[httpx.URL, Mapping[str, str]], Awaitable[httpx.Response]]
#: What an auth method uses: posts a form to the token endpoint and returns the grant it gave.
TokenRequester = Callable[[httpx.URL, Mapping[str, str]], Awaitable[TokenGrant]]


@attrs.define
class _TokenCache:
    """One cached token with its refresh time, and a lock so that one fetch runs at a time."""

    _token: str | None = attrs.field(default=None, repr=False)
    _refresh_at: float = 0.0
    _lock: asyncio.Lock | None = attrs.field(default=None, repr=False)
    _lock_loop: asyncio.AbstractEventLoop | None = attrs.field(default=None, repr=False)

    def _valid_token(self, now: float) -> str | None:
        return self._token if self._token is not None and now < self._refresh_at else None

    def _loop_lock(self) -> asyncio.Lock:
        # An asyncio.Lock belongs to one event loop; an auth object may outlive a loop (tests,
        # asyncio.run twice), so each loop gets its own lock.
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        return self._lock

    async def get(self, fetch: Callable[[], Awaitable[TokenGrant]], clock: Clock) -> tuple[str, bool]:
        """Return ``(token, fresh)``; ``fresh`` when this call just had the token issued."""
        token = self._valid_token(clock.monotonic())
        if token is not None:
            return token, False
        async with self._loop_lock():
            token = self._valid_token(clock.monotonic())
            if token is not None:  # another request fetched it while this one waited
                return token, False
            grant = await fetch()
            now = clock.monotonic()
            if grant.expires_in is None:
                self._refresh_at = float("inf")
            else:
                lifetime = max(0.0, grant.expires_in)
                self._refresh_at = now + lifetime - min(REFRESH_MARGIN, lifetime / 2)
            self._token = grant.access_token
            return grant.access_token, grant.issued_now

    def invalidate(self, token: str) -> None:
        """Forget ``token`` if it is still the cached one (a newer one is kept)."""
        if self._token == token:
            self._token = None


@attrs.define(slots=False)
class BoxAuth:
    """Base of the auth methods: owns the token cache shared by all of them.

    `get_token` and `invalidate` are what a `BoxClient` calls; application code has no need to.
    """

    can_refresh: ClassVar[bool] = True
    _caches: dict[str, _TokenCache] = attrs.field(factory=dict, init=False, repr=False, eq=False)

    def _token_url(self, default: httpx.URL) -> httpx.URL:
        return default

    async def _fetch(self, request_token: TokenRequester, token_url: httpx.URL, clock: Clock) -> TokenGrant:
        raise NotImplementedError

    def _cache(self, token_url: httpx.URL) -> _TokenCache:
        # Keyed by token URL: one auth object used against two hosts never mixes their tokens.
        return self._caches.setdefault(str(token_url), _TokenCache())

    async def get_token(self, post: TokenPoster, default_token_url: httpx.URL, clock: Clock) -> tuple[str, bool]:
        """A valid access token, fetched through ``post`` when none is cached.

        Args:
            post: Posts a form to the token endpoint and returns the 2xx answer.
            default_token_url: The client's token URL, used unless the method names its own.
            clock: The client's clock, for expiry.

        Returns:
            ``(token, fresh)``: ``fresh`` when the token endpoint has just issued it (a 401 on a
            fresh token means the credentials are refused, not that the token expired).
        """

        async def request_token(url: httpx.URL, form: Mapping[str, str]) -> TokenGrant:
            return grant_from_response(await post(url, form))

        url = self._token_url(default_token_url)
        return await self._cache(url).get(lambda: self._fetch(request_token, url, clock), clock)

    def invalidate(self, token: str, default_token_url: httpx.URL) -> None:
        """Forget ``token`` (Box refused it) so that the next `get_token` fetches a new one."""
        self._cache(self._token_url(default_token_url)).invalidate(token)
