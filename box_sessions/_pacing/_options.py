"""`RateLimit`: how fast a client sends, the one option class of pacing."""

from __future__ import annotations

import attrs

__all__ = ["RateLimit"]


@attrs.frozen(kw_only=True)
class RateLimit:
    """How fast a client sends, shared by all its requests (the token request excepted).

    Args:
        requests_per_minute: The most the client sends. Default: Box's documented limit of
            about 1,000 calls a minute per user.
        burst: Requests that may leave at once after a quiet spell. ``1`` spaces every request
            evenly, which keeps clear of Box's limit whatever its bucket size.
        adaptive: Follow Box's 429s down (Box applies lower limits under load) and probe back up
            when they stop (see ``box_sessions._pacing._rate``).
        min_requests_per_minute: The adaptive rate never goes below this.
    """

    requests_per_minute: float = attrs.field(default=1000.0, validator=attrs.validators.gt(0))
    burst: int = attrs.field(default=1, validator=[attrs.validators.instance_of(int), attrs.validators.ge(1)])
    adaptive: bool = True
    min_requests_per_minute: float = attrs.field(default=30.0, validator=attrs.validators.gt(0))

    @min_requests_per_minute.validator
    def _check_min(self, _attribute: attrs.Attribute[float], value: float) -> None:
        if value > self.requests_per_minute:
            raise ValueError(
                f"RateLimit min_requests_per_minute ({value!r}) must not exceed "
                f"requests_per_minute ({self.requests_per_minute!r})"
            )
