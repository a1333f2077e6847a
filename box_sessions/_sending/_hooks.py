"""`CallObserver`: what a caller is told of its calls (requests sent, answers, retries), in one hook object."""

from __future__ import annotations

import attrs

from .._errors import BoxAPIError, BoxConnectionError, BoxTimeoutError

__all__ = ["CallObserver", "retry_reason"]


@attrs.define
class CallObserver:
    """Counts what one caller's calls cost; the bulk manager keeps one per job.

    The sender tells it of each request it puts on the wire (hedged copies and the resend after a
    401 included), each answer, and each retry, each in one place.
    """

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0

    def sent(self) -> None:
        """A request went on the wire."""
        self.requests += 1

    def answered(self, status: int) -> None:
        """A request was answered with ``status``."""
        if status == 429:
            self.rate_limited += 1

    def retrying(self, reason: str) -> None:
        """The call is retried, for ``reason`` (see `retry_reason`)."""
        self.retries += 1


def retry_reason(error: BaseException | None) -> str:
    """Why an attempt is retried, in one word: ``429``, ``5xx``, ``timeout``, ``connection`` or ``error``."""
    if isinstance(error, BoxAPIError):
        return "429" if error.status == 429 else "5xx" if error.status >= 500 else str(error.status)
    if isinstance(error, BoxTimeoutError):
        return "timeout"
    if isinstance(error, BoxConnectionError):
        return "connection"
    return "error"
