"""`Shared`: what `BoxClient(shared=...)` takes, one facet per concern."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ._pacing import SharedPacing
from ._tokens import SharedTokens

__all__ = ["Shared"]


@runtime_checkable
class Shared(Protocol):
    """What `BoxClient(shared=...)` takes: state shared by the processes of one Box app.

    `box_sessions.redis.RedisShare` is one. Implement it to share through another store: the
    README's "Another store" shows a complete one, and the package's contract tests run it.
    """

    @property
    def tokens(self) -> SharedTokens:
        """Access tokens of CCG and JWT apps, one per Box identity."""
        ...

    @property
    def pacing(self) -> SharedPacing | None:
        """One pacing state per Box identity, or ``None``: each process then paces on its own."""
        ...
