"""Sending: one Box API call from the retry rules to the wire, each concern in its own method of `Sender`.

Beside it: the retry rules (`RetryPolicy`, `RetryBudget`), the caller's hook (`CallObserver`),
hedging, the connection gate, bounded answers, and httpx's errors mapped.
"""

from ._hooks import CallObserver, retry_reason
from ._policy import RetryBudget, RetryPolicy, parse_retry_after
from ._sender import Sender

__all__ = ["CallObserver", "RetryBudget", "RetryPolicy", "Sender", "parse_retry_after", "retry_reason"]
