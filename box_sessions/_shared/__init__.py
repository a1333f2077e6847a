"""State that several processes of one Box app share: the port a share implements (`BoxClient(shared=...)`).

Box's tokens and limits belong to the Box user (the service account for CCG and JWT), not to a
process. A share gives the core what it needs to act as one across processes, one facet per
concern, so that each layer sees only its own:

- `Shared.tokens` (`SharedTokens`): access tokens, one per Box identity, and a short lock per
  identity, so that one process asks Box for a token and the others read it.
- `Shared.pacing` (`SharedPacing`, or ``None``): one rate-limit schedule, adaptive rate and 429
  cool-down per Box identity (`PacingState`).

The core never imports the library behind a share: `box_sessions.redis.RedisShare` implements
this port over Redis with public names only, and maps every failure of Redis to
`SharedStateError`, which the core understands: it falls back to this process's own state, says
so once (`ShareHealth`), and goes back when the share answers again. A call never fails because of
a share, except an OAuth 2.0 refresh, which never runs without its store's lock.

This package sits at the bottom of the package, beside the errors, so that a facet of any layer
can be added to `Shared`.
"""

from ._errors import SharedStateError
from ._health import RETRY_SHARE, ShareHealth
from ._pacing import PacingAnswer, PacingReading, PacingState, RateRecord, Refusal, Reservation, SharedPacing
from ._port import Shared
from ._tokens import SharedLock, SharedToken, SharedTokens

__all__ = [
    "RETRY_SHARE",
    "PacingAnswer",
    "PacingReading",
    "PacingState",
    "RateRecord",
    "Refusal",
    "Reservation",
    "ShareHealth",
    "Shared",
    "SharedLock",
    "SharedPacing",
    "SharedStateError",
    "SharedToken",
    "SharedTokens",
]
