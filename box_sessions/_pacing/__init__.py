"""Pacing: the rate limit and the 429 cool-down, over a state one process or many keep.

`RateLimit` is the option; `Pacer` is how a request meets it (reserve a slot before sending,
record the answer after); `._rate` decides the adaptive rate; `InMemoryPacingState` keeps one
process's schedule, rate and cool-down, and `FallbackPacingState` puts a share's state (see
`box_sessions.Shared`) in front of it while the share answers.
"""

from ._fallback import FallbackPacingState
from ._memory import InMemoryPacingState
from ._options import RateLimit
from ._pacer import Pacer, PacingRefused

__all__ = ["FallbackPacingState", "InMemoryPacingState", "Pacer", "PacingRefused", "RateLimit"]
