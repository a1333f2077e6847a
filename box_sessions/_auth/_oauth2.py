"""`OAuth2Auth`: a user's OAuth 2.0 tokens, refreshed single-flight with single-use refresh tokens.

Within a process the token cache makes the refresh single-flight; across processes the store's
lock does (`LockingTokenStore`), held across load, refresh and save. A refresh never runs without
the lock of a store that has one: two refreshes with one refresh token would log the user out.
"""

from __future__ import annotations

import contextlib
import logging

import attrs

from .._clock import Clock
from .._errors import AuthenticationError
from .._http import httpx
from .._shared import SharedStateError
from ._app import AppAuth, optional_bearer_token, strip_str
from ._cache import DEFAULT_DRAIN_TIMEOUT, TokenRequester
from ._grant import TokenGrant
from ._identity import BoxIdentity
from ._stores import InMemoryTokenStore, LockingTokenStore, OAuth2Tokens, TokenStore

__all__ = ["OAuth2Auth"]

logger = logging.getLogger("box_sessions")


@attrs.define(slots=False, kw_only=True, repr=False)
class OAuth2Auth(AppAuth):
    """OAuth 2.0 with a refresh token, for apps acting for a user who logged in.

    Box's refresh tokens work once: a refresh returns a new pair and spends the old refresh token,
    so two concurrent refreshes would log the user out. Refresh here is single-flight, and the new
    pair is saved through ``token_store`` before any request uses the new access token. With a
    store several processes share (one with a ``lock()``, e.g. ``RedisShare.token_store(key)`` or
    `JSONFileTokenStore`), the lock is held across load, refresh and save: one process refreshes,
    the others use what it saved.

    Args:
        client_id: The app's client id.
        client_secret: The app's client secret. Never shown in a repr, a log or an error.
        access_token: A current access token, if you have one (used until Box refuses it).
        refresh_token: The refresh token. Needed unless ``token_store`` already holds tokens.
            White space around either token (a newline from a file) is dropped; white space, a
            control or a non-ASCII character inside is a ``ValueError`` that does not quote it.
        token_store: Where the tokens live between refreshes (default: `InMemoryTokenStore`).
            What the store holds wins over ``access_token``/``refresh_token``, which only seed
            an empty store: a store saved by an earlier run has the newer refresh token.
        token_url: Where tokens come from; by default ``{base_url}/oauth2/token`` of the client.

    A call needing a token raises `AuthenticationError` (code ``token_store_unavailable``) when
    the store's lock cannot be taken because the shared state is unreachable: the refresh is not
    tried without it.
    """

    _access_token: str | None = attrs.field(
        default=None, converter=strip_str, validator=optional_bearer_token, alias="access_token"
    )
    _refresh_token: str | None = attrs.field(
        default=None, converter=strip_str, validator=optional_bearer_token, alias="refresh_token"
    )
    token_store: TokenStore = attrs.field(factory=InMemoryTokenStore)
    # The access token last handed to the cache: a stored one that differs was saved by another
    # process (or an earlier run) and is used before refreshing; the same one needs a refresh.
    _handed_out: str | None = attrs.field(default=None, init=False, repr=False)
    _unsaved: OAuth2Tokens | None = attrs.field(default=None, init=False, repr=False)
    # The newest pair this process knows (loaded, seeded or saved): written back if the store loses
    # its pair, so that the constructor's refresh token, long spent, is never sent again.
    _last: OAuth2Tokens | None = attrs.field(default=None, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.token_store, TokenStore):
            raise TypeError(
                "token_store must be a TokenStore (a key, and async load() and save()), "
                f"got {type(self.token_store).__name__}"
            )
        if self._refresh_token is None and isinstance(self.token_store, InMemoryTokenStore):
            raise ValueError("OAuth2Auth needs a refresh_token, or a token_store that holds one")

    async def _stored(self) -> OAuth2Tokens:
        """The pair to go on from: the store's; this process's newest if the store lost it; else the given one."""
        stored = await self.token_store.load()
        if stored is None and self._last is not None:
            # The store lost the pair (evicted, flushed, a restart without persistence): write back
            # the newest this process holds, never the constructor's, which Box has long spent.
            logger.warning(
                "The OAuth 2.0 token store %r lost its pair; this process saved back the newest one it holds",
                self.token_store,
            )
            await self.token_store.save(self._last)
            stored = self._last
        elif stored is None:
            if self._refresh_token is None:
                raise AuthenticationError(
                    "OAuth2Auth has no refresh token: the token store is empty and none was given; the user must "
                    "log in again",
                    status=0,
                    code="token_store_empty",
                )
            stored = OAuth2Tokens(access_token=self._access_token, refresh_token=self._refresh_token)
            await self.token_store.save(stored)
        self._last = stored
        return stored

    async def _fetch(self, request_token: TokenRequester, token_url: httpx.URL, clock: Clock) -> TokenGrant:
        async with contextlib.AsyncExitStack() as held:
            if isinstance(self.token_store, LockingTokenStore):
                try:
                    await held.enter_async_context(self.token_store.lock())
                except SharedStateError as exc:
                    raise AuthenticationError(
                        f"cannot refresh the OAuth 2.0 token: the lock of its token store could not be taken ({exc}); "
                        "refreshing without it could spend the refresh token twice and log the user out",
                        status=0,
                        code="token_store_unavailable",
                    ) from exc
            try:
                grant = await self._fetch_holding_lock(request_token, token_url, clock)
            except SharedStateError as exc:
                raise _store_unavailable(exc, saved=self._unsaved is None) from exc
            self._handed_out = grant.access_token
            return grant

    async def _fetch_holding_lock(
        self, request_token: TokenRequester, token_url: httpx.URL, clock: Clock
    ) -> TokenGrant:
        if self._unsaved is not None:  # a refresh whose save failed: save it before anything else
            await self.token_store.save(self._unsaved)
            saved, self._unsaved = self._unsaved, None
            self._last = saved
            return self._grant_from(saved, clock, issued_now=False)
        stored = await self._stored()
        fresh_enough = stored.expires_at is None or stored.expires_at > clock.time() + 1
        if stored.access_token is not None and stored.access_token != self._handed_out and fresh_enough:
            # Saved by another process, or given: use it; a 401 on it means refresh.
            return self._grant_from(stored, clock, issued_now=False)
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
        self._last = tokens
        return grant

    async def drain(self, *, timeout: float = DEFAULT_DRAIN_TIMEOUT) -> None:
        """Let the token requests in flight end (`BoxAuth.drain`); then say loudly if a new pair is still unsaved."""
        await super().drain(timeout=timeout)
        if self._unsaved is not None:
            logger.error(
                "An OAuth 2.0 pair Box issued to this process could not be saved to its token store %r and is held "
                "only in this process's memory (Box has spent the refresh token before it): if this process exits "
                "now it is lost and the user must log in again; a call made while the store answers saves it",
                self.token_store,
            )

    @staticmethod
    def _grant_from(tokens: OAuth2Tokens, clock: Clock, *, issued_now: bool) -> TokenGrant:
        assert tokens.access_token is not None  # noqa: S101 - callers check
        expires_in = None if tokens.expires_at is None else tokens.expires_at - clock.time()
        return TokenGrant(access_token=tokens.access_token, expires_in=expires_in, issued_now=issued_now)

    def identity(self, default_token_url: httpx.URL) -> BoxIdentity | None:
        """The user, when the token store names it (``RedisShare.token_store("user-42")``), else ``None``.

        Processes that keep one user's tokens under one store key act for one Box user: they pace
        together. A store that names no key leaves each process pacing alone.
        """
        key = self.token_store.key
        if not key:
            return None
        return BoxIdentity(
            token_url=str(self._token_url(default_token_url)), client_id=self.client_id, subject=f"oauth2:{key}"
        )

    def __repr__(self) -> str:
        return f"OAuth2Auth(client_id={self.client_id!r}, token_store={self.token_store!r}, client_secret=***)"


def _store_unavailable(exc: SharedStateError, *, saved: bool) -> AuthenticationError:
    """The error of a call whose refresh met a token store that failed (``saved``: no new pair is waiting)."""
    if saved:
        what = "the token store failed before a refresh was sent; nothing was spent"
    else:
        what = (
            "Box refreshed the tokens but the token store could not save the new pair; it is kept in this process "
            "and saved at the next call"
        )
    return AuthenticationError(
        f"cannot refresh the OAuth 2.0 token: {what} ({exc})", status=0, code="token_store_unavailable"
    )
