"""The token cache every auth method shares: fetched before first use, refreshed ahead of expiry, single flight.

The transport asks an auth object for a token with `BoxAuth.get_token` and drops a token Box
refused with `BoxAuth.invalidate`: that is the whole protocol between the two layers. However
many requests need a token at once, one token request is made. Each method only says how to get
a token (`BoxAuth._fetch`).

A token request runs as a task of its own, which every caller needing the token waits on. A
caller that is cancelled (a web request that went away) stops waiting at once, but the request it
started runs to its end: Box spends an OAuth 2.0 refresh token when it receives it, so a refresh
cut short would lose the new pair. The callers still waiting get its result, success or failure;
the next call after it ended may try again. `BoxAuth.drain` lets the requests in flight finish
when a client closes.

With a share (`BoxClient(shared=...)`), a CCG or JWT token request goes through it
(`._sharing`): one token per expiry for all the processes of the app.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import ClassVar

import attrs

from .._clock import Clock
from .._errors import BoxError, BoxTimeoutError
from .._http import httpx
from .._shared import Shared, SharedTokens, ShareHealth
from ._grant import TokenGrant, grant_from_response
from ._identity import BoxIdentity
from ._sharing import had_from_grant, shared_token

__all__ = ["DEFAULT_DRAIN_TIMEOUT", "BoxAuth", "TokenPoster", "TokenRequester"]

logger = logging.getLogger("box_sessions")

#: Seconds `BoxAuth.drain` waits by default: one attempt's network timeout of a default client.
DEFAULT_DRAIN_TIMEOUT = 30.0
# After cancelling the requests that outlived the drain, how long to let them unwind.
_UNWIND_TIMEOUT = 1.0

#: What the transport gives: posts a form to the token endpoint (with the client's retries) and
#: returns the 2xx answer.
TokenPoster = Callable[[httpx.URL, Mapping[str, str]], Awaitable[httpx.Response]]
#: What an auth method uses: posts a form to the token endpoint and returns the grant it gave.
TokenRequester = Callable[[httpx.URL, Mapping[str, str]], Awaitable[TokenGrant]]

#: ``(token, fresh)``: ``fresh`` when the token endpoint has just issued the token.
_Token = tuple[str, bool]
#: A share's tokens, the Box identity's key in it, and the client's view of the share.
_ShareAt = tuple[SharedTokens, str, ShareHealth]


@attrs.define
class _TokenCache:
    """One cached token with its refresh time, and the token request in flight, if any."""

    _token: str | None = attrs.field(default=None, repr=False)
    _refresh_at: float = 0.0
    _inflight: asyncio.Task[_Token] | None = attrs.field(default=None, repr=False)
    _refused: str | None = attrs.field(default=None, repr=False)  # never taken back from a share

    def _valid_token(self, now: float) -> str | None:
        return self._token if self._token is not None and now < self._refresh_at else None

    def running_fetch(self) -> asyncio.Task[_Token] | None:
        """The token request in flight on this event loop, if any.

        A task belongs to one event loop; an auth object may outlive a loop (tests, asyncio.run
        twice), so a request left on another loop is ignored.
        """
        task = self._inflight
        if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
            return None
        return task

    async def get(
        self,
        fetch: Callable[[], Awaitable[TokenGrant]],
        clock: Clock,
        deadline: float | None,
        share: _ShareAt | None = None,
    ) -> _Token:
        """Return ``(token, fresh)``; ``fresh`` when the token endpoint has just issued it."""
        token = self._valid_token(clock.monotonic())
        if token is not None:
            return token, False
        remaining = math.inf if deadline is None else deadline - clock.monotonic()
        if remaining <= 0:
            raise BoxTimeoutError("the call's deadline passed before a token could be had")
        task = self.running_fetch()
        if task is None:
            task = asyncio.get_running_loop().create_task(self._fill(fetch, clock, share))
            task.add_done_callback(self._fetch_ended)
            self._inflight = task
        return await _wait_for_fetch(task, remaining)

    async def _fill(self, fetch: Callable[[], Awaitable[TokenGrant]], clock: Clock, share: _ShareAt | None) -> _Token:
        if share is None:
            had = had_from_grant(await fetch())
        else:
            tokens, key, health = share
            had = await shared_token(tokens, key, fetch, clock, refused=self._refused, health=health)
        self._refresh_at = clock.monotonic() + had.refresh_in
        self._token = had.access_token
        return had.access_token, had.issued_now

    def _fetch_ended(self, task: asyncio.Task[_Token]) -> None:
        if self._inflight is task:
            self._inflight = None
        if not task.cancelled():
            task.exception()  # every caller may have gone: the error is theirs, not the loop's to report

    def invalidate(self, token: str) -> None:
        """Forget ``token`` if it is still the cached one (a newer one is kept); never take it from a share again."""
        self._refused = token
        if self._token == token:
            self._token = None


async def _wait_for_fetch(task: asyncio.Task[_Token], remaining: float) -> _Token:
    """Wait for the shared token request until it ends or ``remaining`` seconds pass.

    `asyncio.wait` never cancels what it waits on: a caller cancelled here leaves the request
    running for the others.
    """
    done, _ = await asyncio.wait({task}, timeout=None if math.isinf(remaining) else remaining)
    if not done:
        raise BoxTimeoutError(
            f"waited {remaining:.1f} s for the token request in flight, until this call's deadline; "
            "the request goes on for the other callers"
        )
    if task.cancelled():
        raise BoxError("the token request was cancelled before it ended: its client was closed")
    return task.result()


@attrs.define(slots=False)
class BoxAuth:
    """Base of the auth methods: owns the token cache shared by all of them.

    `get_token` and `invalidate` are what a `BoxClient` calls, and `drain` what it awaits when it
    closes; application code has no need to.
    """

    can_refresh: ClassVar[bool] = True
    _caches: dict[str, _TokenCache] = attrs.field(factory=dict, init=False, repr=False, eq=False)

    def _token_url(self, default: httpx.URL) -> httpx.URL:
        return default

    async def _fetch(self, request_token: TokenRequester, token_url: httpx.URL, clock: Clock) -> TokenGrant:
        raise NotImplementedError

    def identity(self, default_token_url: httpx.URL) -> BoxIdentity | None:
        """Whom this method acts for at Box, or ``None`` when that is not known.

        The one answer to "which Box user is this": CCG and JWT name the app and its subject, a
        developer token its SHA-256, OAuth 2.0 its token store's key. A share keys tokens (CCG and
        JWT only) and pacing by it, and the command line's journal names its job's credentials by it.

        Args:
            default_token_url: The client's token URL, used unless the method names its own.
        """
        return None

    def _cache(self, token_url: httpx.URL) -> _TokenCache:
        # Keyed by token URL: one auth object used against two hosts never mixes their tokens.
        return self._caches.setdefault(str(token_url), _TokenCache())

    async def get_token(
        self,
        post: TokenPoster,
        default_token_url: httpx.URL,
        clock: Clock,
        *,
        deadline: float | None = None,
        shared: Shared | None = None,
        health: ShareHealth | None = None,
    ) -> tuple[str, bool]:
        """A valid access token, fetched through ``post`` when none is cached.

        Args:
            post: Posts a form to the token endpoint and returns the 2xx answer.
            default_token_url: The client's token URL, used unless the method names its own.
            clock: The client's clock, for expiry.
            deadline: The call's deadline on ``clock.monotonic()``: waiting for a token request in
                flight ends there (the request goes on for the others). ``None``: no deadline.
            shared: State shared with other processes: a CCG or JWT token is had through it, one
                per expiry for all of them. Other methods keep their tokens to themselves (OAuth
                2.0 shares through its ``token_store``).
            health: The client's view of ``shared`` (one is made for the call when none is given).

        Returns:
            ``(token, fresh)``: ``fresh`` when the token endpoint has just issued it (a 401 on a
            fresh token means the credentials are refused, not that the token expired).

        Raises:
            BoxError: the token request failed (the same error for every caller waiting on it).
            BoxTimeoutError: the deadline passed while waiting for the token request.
        """

        async def request_token(url: httpx.URL, form: Mapping[str, str]) -> TokenGrant:
            return grant_from_response(await post(url, form))

        url = self._token_url(default_token_url)
        identity = None if shared is None else self.identity(default_token_url)
        share = None
        if shared is not None and identity is not None and identity.shares_tokens:
            share = (shared.tokens, identity.key, health or ShareHealth(clock))
        return await self._cache(url).get(lambda: self._fetch(request_token, url, clock), clock, deadline, share)

    def invalidate(self, token: str, default_token_url: httpx.URL) -> None:
        """Forget ``token`` (Box refused it) so that the next `get_token` fetches a new one."""
        self._cache(self._token_url(default_token_url)).invalidate(token)

    def _running_fetches(self) -> Iterator[asyncio.Task[_Token]]:
        for cache in list(self._caches.values()):
            task = cache.running_fetch()
            if task is not None:
                yield task

    async def drain(self, *, timeout: float = DEFAULT_DRAIN_TIMEOUT) -> None:
        """Let the token requests in flight on this event loop end, waiting at most ``timeout`` seconds.

        A client awaits this when it closes, before closing its connections, so that a token
        request whose caller went away still ends and its result is kept (an OAuth 2.0 refresh
        saved through its store). Requests still running after ``timeout`` are cancelled, with a
        warning, so that nothing is left running.

        Args:
            timeout: Seconds to wait; ``0`` cancels at once.

        Raises:
            TypeError, ValueError: ``timeout`` is not a non-negative number.
        """
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise TypeError(f"timeout must be a number of seconds, got {type(timeout).__name__}")
        if not timeout >= 0:
            raise ValueError(f"timeout must not be negative, got {timeout!r}")
        running = set(self._running_fetches())
        if not running:
            return
        _, pending = await asyncio.wait(running, timeout=timeout)
        if not pending:
            return
        logger.warning(
            "%d token request(s) still in flight %.1f s after the client began closing were cancelled; "
            "an OAuth 2.0 refresh cut short may have spent its refresh token at Box",
            len(pending),
            timeout,
        )
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=_UNWIND_TIMEOUT)
