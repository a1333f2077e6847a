"""Whether a share answers, as one facet of one client sees it: said once when it fails, once when it is back.

Every facet of a share falls back the same way (tokens: this process asks Box itself; pacing: this
process paces alone), and says so the same way: one WARNING when the share first fails, nothing
while it keeps failing, one INFO line when it answers again.
"""

from __future__ import annotations

import logging

from .._clock import Clock
from ._errors import SharedStateError

__all__ = ["ShareHealth"]

logger = logging.getLogger("box_sessions")


class ShareHealth:
    """The share's health for one facet: failing or not, and when to try it again.

    Args:
        facet: What is shared, for the messages ("pacing state").
        alone: What this process does meanwhile ("this process paces on its own").
        together: What holds again once it answers ("processes pace together again").
        retry_after: Seconds to leave the share alone after a failure before trying it again;
            ``None``: try it again at the next need.
        clock: The client's clock, to time ``retry_after``.
    """

    def __init__(
        self, facet: str, *, alone: str, together: str, retry_after: float | None = None, clock: Clock | None = None
    ) -> None:
        self._facet = facet
        self._alone = alone
        self._together = together
        self._clock = clock
        self._retry_after = retry_after
        self._retry_at: float | None = None  # set while the share is failing

    @property
    def failing(self) -> bool:
        """Whether the share failed last (this process is on its own)."""
        return self._retry_at is not None

    def may_try(self) -> bool:
        """Whether to ask the share now: it is not failing, or its time to be tried again has come."""
        return self._retry_at is None or self._now() >= self._retry_at

    def _now(self) -> float:
        return 0.0 if self._clock is None else self._clock.monotonic()

    def failed(self, exc: SharedStateError) -> None:
        """The share failed: say so if it was answering, and leave it alone for a while."""
        if self._retry_at is None:
            logger.warning("The shared %s failed (%s); %s until it answers again", self._facet, exc, self._alone)
        self._retry_at = self._now() + (self._retry_after or 0.0)

    def answered(self) -> None:
        """The share answered: say so if it was failing."""
        if self._retry_at is not None:
            self._retry_at = None
            logger.info("The shared %s answers again; %s", self._facet, self._together)

    def __repr__(self) -> str:
        return f"ShareHealth({self._facet!r}, failing={self.failing})"
