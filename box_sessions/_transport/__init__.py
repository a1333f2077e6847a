"""The wire: the retry loop and its rules, the rate limiter and cool-down, hedging, httpx's errors mapped."""

from ._policy import RetryBudget, RetryPolicy, parse_retry_after
from ._ratelimit import RateLimit, RateLimiter
from ._retrying import CallObserver
from ._transport import Transport

__all__ = ["CallObserver", "RateLimit", "RateLimiter", "RetryBudget", "RetryPolicy", "Transport", "parse_retry_after"]
