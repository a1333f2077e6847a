"""Credentials, and the one token cache every auth method shares.

The transport asks an auth object for a token with `BoxAuth._get_token` and drops a token Box
refused with `BoxAuth._invalidate`. The cache (one implementation for every method) fetches
before first use, refreshes ahead of expiry, and is single-flight: however many requests need a
token at once, one token request is made. Each method only says how to get a token (`_fetch`).
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import attrs
import httpx

from ._clock import Clock
from ._errors import AuthenticationError, BoxError
from ._validation import check_secure_url, normalise_id

__all__ = [
    "BoxAuth",
    "CCGAuth",
    "DeveloperTokenAuth",
    "InMemoryTokenStore",
    "JSONFileTokenStore",
    "OAuth2Auth",
    "OAuth2Tokens",
    "TokenGrant",
    "TokenStore",
]

# Refresh this long before a token expires (capped at half its lifetime for short-lived tokens),
# so that a request never leaves with a token that expires on the way.
REFRESH_MARGIN = 60.0


@attrs.frozen(kw_only=True)
class TokenGrant:
    """What a token request gave.

    Attributes:
        access_token: The token.
        expires_in: Its lifetime in seconds; ``None`` when unknown (used until Box refuses it).
        refresh_token: The new refresh token (OAuth 2.0 only).
        issued_now: ``True`` when the token endpoint just issued it; ``False`` for a token that
            was stored or given (a 401 on it means "refresh", not "these credentials are bad").
    """

    access_token: str = attrs.field(repr=False)
    expires_in: float | None
    refresh_token: str | None = attrs.field(default=None, repr=False)
    issued_now: bool = True


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
    """Base of the auth methods: owns the token cache shared by all of them."""

    can_refresh: ClassVar[bool] = True
    _caches: dict[str, _TokenCache] = attrs.field(factory=dict, init=False, repr=False, eq=False)

    def _token_url(self, default: httpx.URL) -> httpx.URL:
        return default

    async def _fetch(self, request_token: TokenRequester, token_url: httpx.URL, clock: Clock) -> TokenGrant:
        raise NotImplementedError

    def _cache(self, token_url: httpx.URL) -> _TokenCache:
        # Keyed by token URL: one auth object used against two hosts never mixes their tokens.
        return self._caches.setdefault(str(token_url), _TokenCache())

    async def _get_token(
        self, request_token: TokenRequester, default_token_url: httpx.URL, clock: Clock
    ) -> tuple[str, bool]:
        url = self._token_url(default_token_url)
        return await self._cache(url).get(lambda: self._fetch(request_token, url, clock), clock)

    def _invalidate(self, token: str, default_token_url: httpx.URL) -> None:
        self._cache(self._token_url(default_token_url)).invalidate(token)


def _non_empty_str(_inst: object, attribute: attrs.Attribute[str], value: object) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{attribute.alias or attribute.name} must be a str, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{attribute.alias or attribute.name} must not be empty")


def _optional_non_empty_str(_inst: object, attribute: attrs.Attribute[str | None], value: object) -> None:
    if value is not None:
        _non_empty_str(_inst, attribute, value)  # type: ignore[arg-type]


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

    async def _fetch(self, request_token: TokenRequester, token_url: httpx.URL, clock: Clock) -> TokenGrant:
        return TokenGrant(access_token=self._token, expires_in=None, issued_now=False)

    def __repr__(self) -> str:
        return "DeveloperTokenAuth(token=***)"


def _enterprise_id(value: object) -> str | None:
    return None if value is None else normalise_id(value, "enterprise_id")


def _user_id(value: object) -> str | None:
    return None if value is None else normalise_id(value, "user_id")


def _optional_token_url(value: object) -> httpx.URL | None:
    return None if value is None else check_secure_url(value, "token_url")


@attrs.define(slots=False, kw_only=True, repr=False)
class _SubjectAuth(BoxAuth):
    """An app acting as its enterprise's service account or as one user (CCG and JWT)."""

    client_id: str = attrs.field(validator=_non_empty_str)
    _client_secret: str = attrs.field(validator=_non_empty_str, alias="client_secret")
    enterprise_id: str | None = attrs.field(default=None, converter=_enterprise_id)
    user_id: str | None = attrs.field(default=None, converter=_user_id)
    token_url: httpx.URL | None = attrs.field(default=None, converter=_optional_token_url)

    def __attrs_post_init__(self) -> None:
        if (self.enterprise_id is None) == (self.user_id is None):
            raise ValueError(f"{type(self).__name__} needs exactly one of enterprise_id and user_id")

    @property
    def _subject(self) -> tuple[str, str]:
        if self.enterprise_id is not None:
            return "enterprise", self.enterprise_id
        return "user", str(self.user_id)

    def with_user_subject(self, user_id: str | int) -> _SubjectAuth:
        """The same app acting as ``user_id``, with a token cache of its own."""
        return attrs.evolve(self, enterprise_id=None, user_id=user_id)

    def _token_url(self, default: httpx.URL) -> httpx.URL:
        return self.token_url or default

    def __repr__(self) -> str:
        kind, subject = self._subject
        return f"{type(self).__name__}(client_id={self.client_id!r}, {kind}_id={subject!r}, client_secret=***)"


@attrs.define(slots=False, kw_only=True, repr=False)
class CCGAuth(_SubjectAuth):
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

    async def _fetch(self, request_token: TokenRequester, token_url: httpx.URL, clock: Clock) -> TokenGrant:
        subject_type, subject_id = self._subject
        form = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self._client_secret,
            "box_subject_type": subject_type,
            "box_subject_id": subject_id,
        }
        return await request_token(token_url, form)


# -- OAuth 2.0 ---------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class OAuth2Tokens:
    """An OAuth 2.0 token pair as a store keeps it.

    Attributes:
        access_token: The access token (``None`` when only a refresh token is known).
        refresh_token: The refresh token: it works once; Box sends a new one with every refresh.
        expires_at: Wall-clock Unix time when the access token expires, if known.
    """

    access_token: str | None = attrs.field(default=None, repr=False)
    refresh_token: str = attrs.field(repr=False)
    expires_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"access_token": self.access_token, "refresh_token": self.refresh_token, "expires_at": self.expires_at}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OAuth2Tokens:
        refresh = data.get("refresh_token")
        if not isinstance(refresh, str) or not refresh:
            raise ValueError("stored tokens have no refresh_token")
        access = data.get("access_token")
        expires = data.get("expires_at")
        return cls(
            access_token=access if isinstance(access, str) and access else None,
            refresh_token=refresh,
            expires_at=float(expires) if isinstance(expires, (int, float)) and not isinstance(expires, bool) else None,
        )


@runtime_checkable
class TokenStore(Protocol):
    """Where `OAuth2Auth` keeps its tokens between refreshes and runs (e.g. your database).

    ``save`` is awaited with the new pair before the new access token is used, so a crash never
    leaves only a spent refresh token behind.
    """

    async def load(self) -> OAuth2Tokens | None:
        """The saved tokens, or ``None`` when nothing is saved yet."""
        ...

    async def save(self, tokens: OAuth2Tokens) -> None:
        """Save ``tokens``, replacing what was saved."""
        ...


class InMemoryTokenStore:
    """Keeps the tokens in memory only (the default): they are gone when the process ends."""

    def __init__(self) -> None:
        self._tokens: OAuth2Tokens | None = None

    async def load(self) -> OAuth2Tokens | None:
        return self._tokens

    async def save(self, tokens: OAuth2Tokens) -> None:
        self._tokens = tokens

    def __repr__(self) -> str:
        return "InMemoryTokenStore()"


class JSONFileTokenStore:
    """Keeps the tokens in a JSON file readable by its owner only (0600), replaced atomically.

    A new file is written next to the old one and renamed over it, so a crash mid-write leaves
    the previous tokens intact.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    async def load(self) -> OAuth2Tokens | None:
        return await asyncio.to_thread(self._load)

    async def save(self, tokens: OAuth2Tokens) -> None:
        await asyncio.to_thread(self._save, tokens)

    def _load(self) -> OAuth2Tokens | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise BoxError(f"cannot read the token file {str(self.path)!r}: {type(exc).__name__}") from None
        try:
            return OAuth2Tokens.from_json(data if isinstance(data, dict) else {})
        except ValueError as exc:
            raise BoxError(f"the token file {str(self.path)!r} is not usable: {exc}") from None

    def _save(self, tokens: OAuth2Tokens) -> None:
        directory = self.path.parent
        fd, temp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=directory)  # created 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(tokens.to_json(), f)
                f.flush()
                os.fsync(f.fileno())
            Path(temp).replace(self.path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise

    def __repr__(self) -> str:
        return f"JSONFileTokenStore({str(self.path)!r})"


@attrs.define(slots=False, kw_only=True, repr=False)
class OAuth2Auth(BoxAuth):
    """OAuth 2.0 with a refresh token, for apps acting for a user who logged in.

    Box's refresh tokens work once: a refresh returns a new pair and spends the old refresh token,
    so two concurrent refreshes would log the user out. Refresh here is single-flight, and the new
    pair is saved through ``token_store`` before any request uses the new access token.

    Args:
        client_id: The app's client id.
        client_secret: The app's client secret. Never shown in a repr, a log or an error.
        access_token: A current access token, if you have one (used until Box refuses it).
        refresh_token: The refresh token. Needed unless ``token_store`` already holds tokens.
        token_store: Where the tokens live between refreshes (default: `InMemoryTokenStore`).
            What the store holds wins over ``access_token``/``refresh_token``, which only seed
            an empty store: a store saved by an earlier run has the newer refresh token.
        token_url: Where tokens come from; by default ``{base_url}/oauth2/token`` of the client.
    """

    client_id: str = attrs.field(validator=_non_empty_str)
    _client_secret: str = attrs.field(validator=_non_empty_str, alias="client_secret")
    _access_token: str | None = attrs.field(default=None, validator=_optional_non_empty_str, alias="access_token")
    _refresh_token: str | None = attrs.field(default=None, validator=_optional_non_empty_str, alias="refresh_token")
    token_store: TokenStore = attrs.field(factory=InMemoryTokenStore)
    token_url: httpx.URL | None = attrs.field(default=None, converter=_optional_token_url)
    _stored_used: bool = attrs.field(default=False, init=False, repr=False)
    _unsaved: OAuth2Tokens | None = attrs.field(default=None, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.token_store, TokenStore):
            raise TypeError(f"token_store must have async load() and save(), got {type(self.token_store).__name__}")
        if self._refresh_token is None and isinstance(self.token_store, InMemoryTokenStore):
            raise ValueError("OAuth2Auth needs a refresh_token, or a token_store that holds one")

    def _token_url(self, default: httpx.URL) -> httpx.URL:
        return self.token_url or default

    async def _stored(self) -> OAuth2Tokens:
        stored = await self.token_store.load()
        if stored is not None:
            return stored
        if self._refresh_token is None:
            raise BoxError("OAuth2Auth has no refresh token: the token store is empty and none was given")
        seed = OAuth2Tokens(access_token=self._access_token, refresh_token=self._refresh_token)
        await self.token_store.save(seed)
        return seed

    async def _fetch(self, request_token: TokenRequester, token_url: httpx.URL, clock: Clock) -> TokenGrant:
        if self._unsaved is not None:  # a refresh whose save failed: save it before anything else
            await self.token_store.save(self._unsaved)
            saved, self._unsaved = self._unsaved, None
            return self._grant_from(saved, clock, issued_now=False)
        stored = await self._stored()
        fresh_enough = stored.expires_at is None or stored.expires_at > clock.time() + 1
        if not self._stored_used and stored.access_token is not None and fresh_enough:
            self._stored_used = True  # try the stored access token once; a 401 on it means refresh
            return self._grant_from(stored, clock, issued_now=False)
        self._stored_used = True
        form = {
            "grant_type": "refresh_token",
            "refresh_token": stored.refresh_token,
            "client_id": self.client_id,
            "client_secret": self._client_secret,
        }
        grant = await request_token(token_url, form)
        if grant.refresh_token is None:
            raise AuthenticationError("the token endpoint answered a refresh without a new refresh_token", status=200)
        expires_at = None if grant.expires_in is None else clock.time() + grant.expires_in
        tokens = OAuth2Tokens(access_token=grant.access_token, refresh_token=grant.refresh_token, expires_at=expires_at)
        try:
            await self.token_store.save(tokens)
        except BaseException:
            self._unsaved = tokens  # the old refresh token is spent: keep the new pair to save later
            raise
        return grant

    @staticmethod
    def _grant_from(tokens: OAuth2Tokens, clock: Clock, *, issued_now: bool) -> TokenGrant:
        assert tokens.access_token is not None  # noqa: S101 - callers check
        expires_in = None if tokens.expires_at is None else tokens.expires_at - clock.time()
        return TokenGrant(access_token=tokens.access_token, expires_in=expires_in, issued_now=issued_now)

    def __repr__(self) -> str:
        return f"OAuth2Auth(client_id={self.client_id!r}, token_store={self.token_store!r}, client_secret=***)"
