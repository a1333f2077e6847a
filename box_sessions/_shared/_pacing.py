"""The pacing facet of a share: one schedule, adaptive rate and 429 cool-down per Box identity.

A `PacingState` keeps what every sender acting as one Box user must agree on: the schedule's next
free time (GCRA), the adaptive rate as last set, the answers accepted since, and the cool-down a
429 started. The decisions (how fast to send, how far to slow down after a 429) are the client's
(``box_sessions._pacing``); a state only keeps, hands out and stores atomically. The client meets
a state twice per request: `PacingState.reserve` before it is sent, `PacingState.record` once it
is answered. A state shared by processes (Redis: one script per call) answers both in one round
trip each.

Times inside a state are on the state's own clock and never leave it: callers pass durations (an
interval, a longest wait) and get durations back (a wait, an age, a cool-down), so processes whose
clocks differ still share one schedule.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Protocol, runtime_checkable

import attrs

__all__ = ["PacingAnswer", "PacingReading", "PacingState", "RateRecord", "Refusal", "Reservation", "SharedPacing"]


@attrs.frozen(kw_only=True)
class RateRecord:
    """The adaptive rate as a client last set it.

    Attributes:
        rate: Requests a second right after it was set; ``None`` while no 429 has lowered it (the
            client's configured rate applies).
        ceiling: Requests a second the server was measured to allow when the last 429 came;
            ``None`` when it could not be measured.
        confirmed: How many 429s in a row came near the same ceiling.
        epoch: Bumped by every change, so that a reservation knows which rate scheduled it.
    """

    rate: float | None = None
    ceiling: float | None = None
    confirmed: int = 0
    epoch: int = 0


@attrs.frozen(kw_only=True)
class PacingReading:
    """What a state holds, as read in one step.

    Attributes:
        record: The rate record.
        age: Seconds since the record was set.
        accepted: Answers accepted (not 429, not 5xx) since the record was set.
        cooldown: Seconds left of the cool-down (0 when none).
    """

    record: RateRecord = attrs.field(factory=RateRecord)
    age: float = 0.0
    accepted: int = 0
    cooldown: float = 0.0


@attrs.frozen(kw_only=True)
class Reservation:
    """A slot of the schedule, kept until it is used or given back.

    Attributes:
        wait: Seconds from the reservation until the slot, when the request may be sent (never
            before the cool-down ends).
        reading: The state as it stood when the slot was reserved.
        key: The state's own note of the slot, for `PacingState.give_back`; opaque to callers.
    """

    wait: float
    reading: PacingReading
    key: Hashable = None


@attrs.frozen(kw_only=True)
class Refusal:
    """No slot, and nothing kept: the cool-down or the wait was longer than asked, or the rate changed.

    Attributes:
        wait: Seconds the slot would have been away.
        reading: The state as it stands (its ``record.epoch`` tells a changed rate).
    """

    wait: float
    reading: PacingReading


#: The longest cool-down a state counts, in seconds (about 32 years): a longer one, or a
#: ``retry-after`` too long for a float, holds as long as this. In microseconds it stays an exact
#: integer in a double, as Redis's scripts count; 10**20 s counted there came out as no cool-down.
LONGEST_COOLDOWN = 1e9


def _cooldown(value: float | None) -> float | None:
    return None if value is None else min(value, LONGEST_COOLDOWN)


@attrs.frozen(kw_only=True)
class PacingAnswer:
    """What one request's answer tells a state.

    Attributes:
        status: The answer's HTTP status. A 5xx says nothing about the rate; a 429 says the rate
            was too high; any other counts as accepted.
        cooldown: For a 429: seconds every sender holds off from now (Box's ``retry-after``, or
            the back-off the client chose when there was none), at most `LONGEST_COOLDOWN`. A
            longer cool-down running is kept.
        lowered: For a 429: the rate record the client decided on, to be stored only as the
            successor of the record it was computed from (its ``epoch`` is that record's plus one).
            Storing it restarts the schedule: slots reserved before are void.
    """

    status: int
    cooldown: float | None = attrs.field(default=None, converter=_cooldown)
    lowered: RateRecord | None = None


@runtime_checkable
class PacingState(Protocol):
    """Where one Box identity's schedule, rate and cool-down live; shared by every client that paces with it.

    Each method must be atomic on its own, and bounded in time. A state shared between processes
    raises `SharedStateError` when its backend fails (the client then paces in its own process
    until it answers again), and shields a write from the caller's cancellation, so that nothing
    is half done. `box_sessions.InMemoryPacingState` is the state of one process; the contract
    tests of this package run every implementation through the same cases.
    """

    async def reserve(
        self,
        *,
        interval: float,
        burst: int,
        epoch: int | None,
        max_wait: float | None,
        max_cooldown: float | None,
    ) -> Reservation | Refusal:
        """Reserve the next free slot of a schedule that spaces slots ``interval`` seconds apart.

        After a quiet spell ``burst`` slots may start at once (GCRA); no slot starts before the
        cool-down ends; a slot given back earlier in the schedule is reused first.

        Args:
            interval: Seconds between slots (``0``: no schedule, only the cool-down).
            burst: Slots that may start at once after a quiet spell (at least 1).
            epoch: The epoch of the rate record ``interval`` was computed from: when the record's
                epoch is another, refuse (the client computes the interval again). ``None``:
                reserve whatever the epoch.
            max_wait: Refuse when the slot is more than this many seconds away; ``None``: no limit.
            max_cooldown: Refuse when the cool-down has more than this many seconds left;
                ``None``: no limit.

        Returns:
            The `Reservation`, or a `Refusal` (nothing kept).
        """
        ...

    async def give_back(self, reservation: Reservation) -> None:
        """A reserved slot will not be used (its caller was cancelled or gave up): the next reservation may take it.

        A slot of a schedule restarted since, or of another state, is ignored.
        """
        ...

    async def record(self, answer: PacingAnswer) -> PacingReading:
        """Record one answer (see `PacingAnswer`) in one atomic step; return the state as it stands after it."""
        ...


@runtime_checkable
class SharedPacing(Protocol):
    """The pacing facet of a `box_sessions.Shared`: one `PacingState` per Box identity."""

    def state(self, key: str) -> PacingState:
        """The pacing state of the Box identity ``key`` (an opaque string made by the core; a share may hash it)."""
        ...
