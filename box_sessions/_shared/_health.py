"""Whether a share answers, as one client sees it: said once when it fails, once when it takes writes again.

Every facet of a share falls back the same way (tokens: this process asks Box itself; pacing: this
process paces alone) and is reported as one: a client keeps one `ShareHealth` for its share, which
its token cache and its pacing both tell. It says a failure once at WARNING, and again only when
the share refuses in another way (``READONLY``, then ``OOM``, say); nothing while it keeps failing;
and once at INFO when a *write* succeeds again. A share that answers reads but refuses writes (a
replica, a full Redis) is still failing: reads alone never say it is back.
"""

from __future__ import annotations

import logging

from .._clock import Clock
from ._errors import SharedStateError

__all__ = ["RETRY_SHARE", "ShareHealth"]

logger = logging.getLogger("box_sessions")

#: Seconds a client leaves a failing share alone before it tries it again.
RETRY_SHARE = 1.0


class ShareHealth:
    """One client's view of its share: failing or not, when to try it again, and what was said.

    Args:
        clock: The client's clock, to time ``retry_after``.
        retry_after: Seconds to leave the share alone after a failure before trying it again.
    """

    def __init__(self, clock: Clock, *, retry_after: float = RETRY_SHARE) -> None:
        self.clock = clock
        self._retry_after = retry_after
        self._retry_at: float | None = None  # set while the share is failing
        self._refused: str | None = None  # what the share refused last, while failing
        self._said: set[str] = set()  # the refusals warned about: each is said once

    @property
    def failing(self) -> bool:
        """Whether the share failed last (this process is on its own)."""
        return self._retry_at is not None

    def may_try(self) -> bool:
        """Whether to ask the share now: it is not failing, or its time to be tried again has come."""
        return self._retry_at is None or self.clock.monotonic() >= self._retry_at

    def failed(self, exc: SharedStateError) -> None:
        """The share failed: say so unless this was said already, and leave it alone for a while.

        A refusal (``READONLY``, ``OOM``, ``NOPERM``) is said once in the client's life: it says
        what to change, and until it is changed the share keeps refusing some of the time. A share
        that could not be reached is said once each time it stops answering.
        """
        new = exc.refusal not in self._said if exc.refusal is not None else self._retry_at is None
        if new:
            logger.warning(
                "The share failed (%s); this process goes on alone (its own tokens and pacing) until it takes "
                "writes again",
                exc,
            )
        if exc.refusal is not None:
            self._said.add(exc.refusal)
        self._refused = exc.refusal
        self._retry_at = self.clock.monotonic() + self._retry_after

    def answered(self, *, wrote: bool) -> None:
        """The share answered; when it took a write, it is back: say so if it could not be reached before.

        After a refusal it is not said: the refusal's WARNING said what to change, and a share
        that refuses one command and takes another would otherwise flap in the log.
        """
        if self._retry_at is None or not wrote:
            return
        self._retry_at, refused, self._refused = None, self._refused, None
        if refused is None:
            logger.info("The share takes writes again; processes share tokens and pacing again")

    def __repr__(self) -> str:
        return f"ShareHealth(failing={self.failing})"
