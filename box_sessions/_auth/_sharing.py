"""One access token per expiry across processes: a CCG or JWT token had through a share (`SharedTokens`).

1. Read the shared token; use it unless it is due for refresh or Box refused it here.
2. Otherwise take the identity's lock without waiting; while another process holds it, look
   again for the token it will store, every `POLL_INTERVAL`, until the lock is had.
3. Holding the lock, read again (the last holder may have stored one), and only if still needed
   ask Box, store the token with its expiry, and free the lock.

If the share fails (unreachable, lost mid-way, refusing writes), the token comes from this
process's own request; the client's `ShareHealth` says so once, leaves the share alone for a
second, and says when it takes writes again. The share's failures never fail a call, and never
make two token requests for one need.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable

import attrs

from .._clock import Clock
from .._shared import SharedLock, SharedStateError, SharedToken, SharedTokens, ShareHealth
from ._grant import TokenGrant, refresh_after

__all__ = ["LOCK_WAIT", "POLL_INTERVAL", "Had", "had_from_grant", "shared_token"]

logger = logging.getLogger("box_sessions")

#: Seconds between looks at the share while another process asks Box for the token.
POLL_INTERVAL = 0.05
#: The longest a process waits for another's token request before asking Box itself. A holder
#: that died frees the lock after the share's lock time (seconds), well within this.
LOCK_WAIT = 30.0


@attrs.frozen
class Had:
    """A token as the cache keeps it: the token, seconds until it is due for refresh, and whether just issued."""

    access_token: str = attrs.field(repr=False)
    refresh_in: float
    issued_now: bool


def had_from_grant(grant: TokenGrant) -> Had:
    """The grant as the cache keeps it (a grant without expiry is used until Box refuses it)."""
    refresh_in = math.inf if grant.expires_in is None else refresh_after(grant.expires_in)
    return Had(grant.access_token, refresh_in, grant.issued_now)


@attrs.frozen
class _Need:
    """One identity's need for a token: where it is shared, how to ask Box, and what Box refused."""

    tokens: SharedTokens
    key: str
    fetch: Callable[[], Awaitable[TokenGrant]]
    clock: Clock
    refused: str | None

    def usable(self, found: SharedToken | None) -> SharedToken | None:
        """``found`` unless it is absent, refused by Box here, or due for refresh."""
        if found is None or found.access_token == self.refused or self.clock.time() >= found.refresh_at:
            return None
        return found

    def from_share(self, found: SharedToken) -> Had:
        return Had(found.access_token, found.refresh_at - self.clock.time(), issued_now=False)

    async def ask_box(self) -> tuple[Had, TokenGrant]:
        grant = await self.fetch()
        return had_from_grant(grant), grant


async def shared_token(
    tokens: SharedTokens,
    key: str,
    fetch: Callable[[], Awaitable[TokenGrant]],
    clock: Clock,
    *,
    refused: str | None,
    health: ShareHealth,
) -> Had:
    """The identity's token: another process's, or one asked of Box by this one and stored for the others.

    Args:
        tokens: The share.
        key: The Box identity.
        fetch: Asks Box for a token (this process's own request).
        clock: For the wall-clock times shared with other processes.
        refused: The token Box last refused here: never taken back from the share.
        health: The client's view of its share: told of each failure, and of each write that
            succeeded; while the share is left alone, the token comes from Box directly.

    Raises:
        BoxError: Box's answer to the token request (never a failure of the share).
    """
    need = _Need(tokens, key, fetch, clock, refused)
    if not health.may_try():
        return (await need.ask_box())[0]
    try:
        found = await _token_or_lock(need)
    except SharedStateError as exc:
        health.failed(exc)
        return (await need.ask_box())[0]
    health.answered(wrote=not isinstance(found, SharedToken))  # a lock taken is a write
    if isinstance(found, SharedToken):
        return need.from_share(found)
    if found is None:
        logger.info("Another process has asked for this token for %.0f s; asking Box from here too", LOCK_WAIT)
        return await _ask_and_store(need, health)
    try:
        return await _under_lock(need, health)
    finally:
        try:
            await found.release()
        except SharedStateError as exc:
            health.failed(exc)  # the lock frees itself after its time


async def _token_or_lock(need: _Need) -> SharedToken | SharedLock | None:
    """A usable shared token, or this identity's lock, or ``None`` after waiting `LOCK_WAIT` for either."""
    found = need.usable(await need.tokens.load(need.key))
    if found is not None:
        return found
    loop = asyncio.get_running_loop()
    # Real time, not the client's clock: the lock frees itself on the share's clock.
    give_up = loop.time() + LOCK_WAIT
    while True:
        lock = await need.tokens.try_lock(need.key)
        if lock is not None:
            return lock
        if loop.time() >= give_up:
            return None
        await asyncio.sleep(POLL_INTERVAL)
        found = need.usable(await need.tokens.load(need.key))
        if found is not None:
            return found


async def _under_lock(need: _Need, health: ShareHealth) -> Had:
    try:
        found = need.usable(await need.tokens.load(need.key))  # the last holder may have stored one
    except SharedStateError as exc:
        health.failed(exc)
        return (await need.ask_box())[0]
    if found is not None:
        return need.from_share(found)
    return await _ask_and_store(need, health)


async def _ask_and_store(need: _Need, health: ShareHealth) -> Had:
    had, grant = await need.ask_box()
    if grant.expires_in is not None and grant.expires_in > 0:
        now = need.clock.time()
        shared = SharedToken(
            access_token=had.access_token, expires_at=now + grant.expires_in, refresh_at=now + had.refresh_in
        )
        try:
            await need.tokens.save(need.key, shared, ttl=grant.expires_in)
        except SharedStateError as exc:
            health.failed(exc)  # this process has its token; the others will ask for theirs
        else:
            health.answered(wrote=True)
    return had
