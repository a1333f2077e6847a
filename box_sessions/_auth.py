"""Credentials, and the one token cache every auth method shares.

The transport asks an auth object for a token with `BoxAuth._get_token` and drops a token Box
refused with `BoxAuth._invalidate`. The cache fetches before first use, refreshes ahead of expiry,
and is single-flight: however many requests need a token at once, one token request is made.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import ClassVar

import attrs
import httpx

from ._clock import Clock
from ._validation import check_secure_url, normalise_id

__all__ = ["BoxAuth", "CCGAuth", "DeveloperTokenAuth", "TokenGrant"]

# Refresh this long before a token expires (capped at half its lifetime for short-lived tokens),
# so that a request never leaves with a token that expires on the way.
REFRESH_MARGIN = 60.0


@attrs.frozen(kw_only=True)
class TokenGrant:
    """An access token and its lifetime in seconds (``None``: no known expiry)."""

    access_token: str = attrs.field(repr=False)
    expires_in: float | None


#: Posts a form to the token endpoint (with the client's retries) and returns the grant.
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
        """Return ``(token, fetched)``; ``fetched`` is true when this call made the token request."""
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
            return grant.access_token, True

    def invalidate(self, token: str) -> None:
        """Forget ``token`` if it is still the cached one (a newer one is kept)."""
        if self._token == token:
            self._token = None


@attrs.define(slots=False)
class BoxAuth:
    """Base of the auth methods: owns the token cache shared by all of them."""

    can_refresh: ClassVar[bool] = True
    _caches: dict[str, _TokenCache] = attrs.field(factory=dict, init=False, repr=False, eq=False)

    def _token_url(self, default: httpx.URL) -> httpx.URL:
        return default

    async def _fetch(self, request_token: TokenRequester, token_url: httpx.URL) -> TokenGrant:
        raise NotImplementedError

    def _cache(self, token_url: httpx.URL) -> _TokenCache:
        # Keyed by token URL: one auth object used against two hosts never mixes their tokens.
        return self._caches.setdefault(str(token_url), _TokenCache())

    async def _get_token(
        self, request_token: TokenRequester, default_token_url: httpx.URL, clock: Clock
    ) -> tuple[str, bool]:
        url = self._token_url(default_token_url)
        return await self._cache(url).get(lambda: self._fetch(request_token, url), clock)

    def _invalidate(self, token: str, default_token_url: httpx.URL) -> None:
        self._cache(self._token_url(default_token_url)).invalidate(token)


def _non_empty_str(_inst: object, attribute: attrs.Attribute[str], value: object) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{attribute.name} must be a str, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{attribute.name} must not be empty")


@attrs.define(slots=False, repr=False)
class DeveloperTokenAuth(BoxAuth):
    """A developer token pasted from Box's developer console.

    It lasts 60 minutes and cannot be refreshed: when Box refuses it, calls raise
    `AuthenticationError` saying so.

    Args:
        token: The developer token. Never shown in a repr, a log or an error.
    """

    can_refresh: ClassVar[bool] = False
    _token: str = attrs.field(validator=_non_empty_str, alias="token")

    async def _fetch(self, request_token: TokenRequester, token_url: httpx.URL) -> TokenGrant:
        return TokenGrant(access_token=self._token, expires_in=None)

    def __repr__(self) -> str:
        return "DeveloperTokenAuth(token=***)"


def _enterprise_id(value: object) -> str | None:
    return None if value is None else normalise_id(value, "enterprise_id")


def _user_id(value: object) -> str | None:
    return None if value is None else normalise_id(value, "user_id")


def _optional_token_url(value: object) -> httpx.URL | None:
    return None if value is None else check_secure_url(value, "token_url")


@attrs.define(slots=False, kw_only=True, repr=False)
class CCGAuth(BoxAuth):
    """Client credentials grant: a server-to-server app's client id and secret.

    Exactly one of ``enterprise_id`` (act as the app's service account) and ``user_id`` (act as
    that user) is given.

    Args:
        client_id: The app's client id.
        client_secret: The app's client secret. Never shown in a repr, a log or an error.
        enterprise_id: The enterprise whose service account the token is for.
        user_id: The user the token is for.
        token_url: Where tokens come from; by default ``{base_url}/oauth2/token`` of the client.
            Must be https (or http to a loopback host).

    Raises:
        TypeError, ValueError: an argument is missing, empty or of the wrong type.
    """

    client_id: str = attrs.field(validator=_non_empty_str)
    _client_secret: str = attrs.field(validator=_non_empty_str, alias="client_secret")
    enterprise_id: str | None = attrs.field(default=None, converter=_enterprise_id)
    user_id: str | None = attrs.field(default=None, converter=_user_id)
    token_url: httpx.URL | None = attrs.field(default=None, converter=_optional_token_url)

    def __attrs_post_init__(self) -> None:
        if (self.enterprise_id is None) == (self.user_id is None):
            raise ValueError("CCGAuth needs exactly one of enterprise_id and user_id")

    def _token_url(self, default: httpx.URL) -> httpx.URL:
        return self.token_url or default

    async def _fetch(self, request_token: TokenRequester, token_url: httpx.URL) -> TokenGrant:
        subject_type, subject_id = (
            ("enterprise", self.enterprise_id) if self.enterprise_id is not None else ("user", self.user_id)
        )
        form = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self._client_secret,
            "box_subject_type": subject_type,
            "box_subject_id": str(subject_id),
        }
        return await request_token(token_url, form)

    def __repr__(self) -> str:
        subject = f"enterprise_id={self.enterprise_id!r}" if self.enterprise_id else f"user_id={self.user_id!r}"
        return f"CCGAuth(client_id={self.client_id!r}, {subject}, client_secret=***)"
