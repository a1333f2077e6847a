"""The state of pacing behind a small protocol, so that several processes can share one schedule.

`PacingState` holds what the rate limiter must agree on with every other sender of the same Box
user: the schedule's next free time, the adaptive rate and the 429 cool-down. The decisions (when
to lower the rate, how fast to raise it) stay in `RateLimiter`, above the state; a state only keeps
and hands out. `InProcessPacingState` is the state of one process. A backend shared between
processes (Redis: one atomic script per call) implements the same async methods.

Times inside a state are on the state's own clock and never leave it: callers pass durations
(an interval, a longest wait, a cool-down) and get durations back (a wait, an age), so processes
whose clocks differ still share one schedule.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Hashable
from typing import Protocol, runtime_checkable

import attrs

from .._clock import Clock
from ._cooldown import Cooldown

__all__ = ["InProcessPacingState", "PacingState", "RateReading", "RateRecord", "Refusal", "Reservation"]


@attrs.frozen
class Reservation:
    """A slot of the schedule, kept until it is used or given back.

    Args:
        wait: Seconds from the reservation until the slot, when the request may be sent.
        epoch: The rate record's epoch when the slot was reserved: a 429 for a slot reserved
            before the last change of rate was scheduled at the old rate and says nothing new.
        key: The state's own note of the slot, for `PacingState.give_back`; opaque to callers.
    """

    wait: float
    epoch: int
    key: Hashable = None


@attrs.frozen
class Refusal:
    """No slot: the wait would have been ``wait`` seconds, longer than the caller allowed. Nothing is kept."""

    wait: float


@attrs.frozen
class RateRecord:
    """The adaptive rate as the rate limiter last set it.

    Args:
        rate: Requests a second right after it was set; ``None`` while no 429 has lowered it
            (the configured rate applies).
        ceiling: Requests a second the server was measured to allow when the last 429 came;
            ``None`` when it could not be measured.
        confirmed: How many 429s in a row came near the same ceiling.
        epoch: Bumped by every change, so that a reservation knows which rate scheduled it.
    """

    rate: float | None = None
    ceiling: float | None = None
    confirmed: int = 0
    epoch: int = 0


@attrs.frozen
class RateReading:
    """A `RateRecord` as read now: the record, seconds since it was set, and answers accepted since."""

    record: RateRecord
    age: float
    accepted: int


@runtime_checkable
class PacingState(Protocol):
    """Where the schedule, the adaptive rate and the cool-down live; shared by everyone who paces together.

    Every method is async so that a state can live in another process; each one must be atomic on
    its own. `give_back` and the methods that write may be called by a task that is being
    cancelled: a state that waits on the network shields that wait, so that nothing is half done.

    The methods:

    - ``reserve(interval, burst=, max_wait=)``: the next free slot of a schedule that spaces slots
      ``interval`` seconds apart and lets ``burst`` leave at once after a quiet spell (GCRA); no
      slot starts before the cool-down ends. Returns a `Reservation`, or a `Refusal` (nothing kept)
      when the wait would exceed ``max_wait`` seconds.
    - ``give_back(reservation)``: a reserved slot will not be used (its caller was cancelled or gave
      up); the next reservation may take it. A slot of a schedule restarted since is ignored.
    - ``get_rate()``: the current `RateReading`.
    - ``set_rate(record, expected_epoch=)``: store ``record`` with the epoch after
      ``expected_epoch``, restart its age and its count of accepted answers, and restart the
      schedule at the next free moment (slots reserved before are void: their holders reserve
      again at the new rate). Refused (``False``) when the epoch is no longer ``expected_epoch``:
      another sender changed the rate first.
    - ``count_accepted()``: one more answer was accepted (not a 429), counted in `RateReading`.
    - ``hold_cooldown(seconds)``: no slot starts before ``seconds`` from now (a longer hold is kept).
    - ``cooldown_remaining()``: seconds left of the cool-down (0 when none).
    """

    async def reserve(self, interval: float, *, burst: int, max_wait: float | None) -> Reservation | Refusal: ...

    async def give_back(self, reservation: Reservation) -> None: ...

    async def get_rate(self) -> RateReading: ...

    async def set_rate(self, record: RateRecord, *, expected_epoch: int) -> bool: ...

    async def count_accepted(self) -> None: ...

    async def hold_cooldown(self, seconds: float) -> None: ...

    async def cooldown_remaining(self) -> float: ...


@attrs.frozen
class _Slot:
    """What the in-process state notes of a reservation: its schedule, its times."""

    generation: int
    send_at: float
    tat_before: float
    tat_after: float


class InProcessPacingState:
    """The `PacingState` of one process: the schedule, the rate and the cool-down held in memory.

    A slot given back in the middle of the schedule is kept as a hole that the next reservation
    fills, so a given-back slot is reused but never doubled; one given back at the end moves the
    schedule back.

    Args:
        clock: The client's clock.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._cooldown = Cooldown(clock)
        self._tat = -math.inf  # theoretical arrival time of the next request (GCRA)
        self._generation = 0  # bumped when the schedule restarts: older slots are void
        self._holes: list[tuple[float, int, _Slot]] = []  # given-back slots, earliest first
        self._hole_ends: dict[float, _Slot] = {}  # the same, by the schedule time they end at
        self._record = RateRecord()
        self._set_at = clock.monotonic()
        self._accepted = 0

    async def reserve(self, interval: float, *, burst: int, max_wait: float | None) -> Reservation | Refusal:
        now = self._clock.monotonic()
        start = now + self._cooldown.remaining
        slot = self._take_hole(now, start)
        from_hole = slot is not None
        if slot is None:
            tat = max(self._tat, start)
            slot = _Slot(self._generation, max(start, tat - (burst - 1) * interval), tat, tat + interval)
        wait = slot.send_at - now
        if max_wait is not None and wait > max_wait:
            if from_hole:
                self._add_hole(slot)  # refused: it stays free
            return Refusal(wait)
        if not from_hole:
            self._tat = slot.tat_after
        return Reservation(wait, self._record.epoch, slot)

    def _take_hole(self, now: float, start: float) -> _Slot | None:
        while self._holes:
            send_at, _, slot = self._holes[0]
            if self._hole_ends.get(slot.tat_after) is not slot:
                heapq.heappop(self._holes)  # taken or merged already
            elif send_at < now or slot.generation != self._generation:
                heapq.heappop(self._holes)  # its moment passed unused
                del self._hole_ends[slot.tat_after]
            elif send_at < start:
                return None  # inside the cool-down; later slots are free at the end
            else:
                heapq.heappop(self._holes)
                del self._hole_ends[slot.tat_after]
                return slot
        return None

    def _add_hole(self, slot: _Slot) -> None:
        self._hole_ends[slot.tat_after] = slot
        heapq.heappush(self._holes, (slot.send_at, id(slot), slot))

    async def give_back(self, reservation: Reservation) -> None:
        slot = reservation.key
        if not isinstance(slot, _Slot) or slot.generation != self._generation:
            return
        if slot.tat_after != self._tat:
            self._add_hole(slot)
            return
        self._tat = slot.tat_before
        # Holes now at the end of the schedule shorten it too.
        while (hole := self._hole_ends.pop(self._tat, None)) is not None:
            self._tat = hole.tat_before

    async def get_rate(self) -> RateReading:
        return RateReading(self._record, self._clock.monotonic() - self._set_at, self._accepted)

    async def set_rate(self, record: RateRecord, *, expected_epoch: int) -> bool:
        if self._record.epoch != expected_epoch:
            return False
        self._record = attrs.evolve(record, epoch=expected_epoch + 1)
        self._set_at = self._clock.monotonic()
        self._accepted = 0
        self._generation += 1
        self._tat = -math.inf
        self._holes.clear()
        self._hole_ends.clear()
        return True

    async def count_accepted(self) -> None:
        self._accepted += 1

    async def hold_cooldown(self, seconds: float) -> None:
        self._cooldown.hold(seconds)

    async def cooldown_remaining(self) -> float:
        return self._cooldown.remaining

    def __repr__(self) -> str:
        return f"InProcessPacingState(epoch={self._record.epoch}, holes={len(self._hole_ends)})"
