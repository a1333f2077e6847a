"""The tokens facet of a share: CCG and JWT access tokens, one per Box identity, with a short lock each."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import attrs

__all__ = ["SharedLock", "SharedToken", "SharedTokens"]


@attrs.frozen(kw_only=True)
class SharedToken:
    """An access token as a share keeps it, with its times on the wall clock that processes share.

    Attributes:
        access_token: The token. Never shown in a repr.
        expires_at: Unix time when Box stops accepting it.
        refresh_at: Unix time from which processes ask for a new one (before ``expires_at``, so
            that no request leaves with a token that expires on the way).
    """

    access_token: str = attrs.field(repr=False)
    expires_at: float
    refresh_at: float


class SharedLock(Protocol):
    """A lock taken with `SharedTokens.try_lock`; it also frees itself after a time of the share's choosing."""

    async def release(self) -> None:
        """Free the lock if this process still holds it.

        Raises:
            SharedStateError: the share could not be reached (the lock then frees itself).
        """
        ...


@runtime_checkable
class SharedTokens(Protocol):
    """Access tokens shared by processes, one per key (a Box identity: token URL, client id, subject).

    Every method is bounded in time by the share and raises `SharedStateError` when the share
    fails. Keys are opaque strings made by the core; a share may hash them.
    """

    async def load(self, key: str) -> SharedToken | None:
        """The token stored under ``key``, or ``None`` (none, expired, or unreadable)."""
        ...

    async def save(self, key: str, token: SharedToken, *, ttl: float) -> None:
        """Store ``token`` under ``key`` for ``ttl`` seconds (until it expires), replacing what was there."""
        ...

    async def try_lock(self, key: str) -> SharedLock | None:
        """Take the lock of ``key`` without waiting: the lock, or ``None`` when another process holds it.

        The lock must free itself after a short time (seconds) even if its holder dies.
        """
        ...
