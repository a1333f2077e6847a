"""State that several processes of one Box app share: the protocols a share implements (`BoxClient(shared=...)`).

Box's tokens and limits belong to the Box user (the service account for CCG and JWT), not to a
process. A share gives the core what it needs to act as one across processes, one facet per
concern, so that each layer sees only its own:

- `Shared.tokens` (`SharedTokens`): access tokens, one per Box identity, and a short lock per
  identity, so that one process asks Box for a token and the others read it.
- ``pacing`` (optional; ``SharedPacing`` in ``_transport._shared_pacing``, beside the pacing state
  it hands out): one rate-limit schedule, adaptive rate and 429 cool-down per Box identity. The
  client reads it with ``getattr``, so a share without it works as before.

The core never imports the library behind a share: `box_sessions.redis.RedisShare` implements
these protocols over Redis, and maps every failure of Redis to `SharedStateError`, which the core
understands (a CCG or JWT token then comes from this process's own request).

This module sits at the bottom of the package, beside the errors, so that a facet of any layer
can be added to `Shared`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import attrs

from ._errors import BoxError

__all__ = ["Shared", "SharedLock", "SharedStateError", "SharedToken", "SharedTokens"]


class SharedStateError(BoxError):
    """The shared state (e.g. Redis) could not be reached, refused a command, or failed mid-way.

    A share raises it for any failure of its backend, with a message that names what failed and
    never a token or a password.
    """


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


@runtime_checkable
class Shared(Protocol):
    """What `BoxClient(shared=...)` takes: state shared by the processes of one Box app.

    `box_sessions.redis.RedisShare` is one. Implement it to share through another store.
    """

    @property
    def tokens(self) -> SharedTokens:
        """Access tokens of CCG and JWT apps, one per Box identity."""
        ...
