"""The wire: the retry loop and its rules, pacing (the rate limiter and its state), the cool-down, the gate, hedging.

httpx's errors are mapped here too.
"""

from ._pacing_state import InProcessPacingState, PacingState, RateReading, RateRecord, Refusal, Reservation
from ._policy import RetryBudget, RetryPolicy, parse_retry_after
from ._ratelimit import RateLimit, RateLimiter
from ._retrying import CallObserver
from ._transport import Transport

__all__ = [
    "CallObserver",
    "InProcessPacingState",
    "PacingState",
    "RateLimit",
    "RateLimiter",
    "RateReading",
    "RateRecord",
    "Refusal",
    "Reservation",
    "RetryBudget",
    "RetryPolicy",
    "Transport",
    "parse_retry_after",
]
