"""`InMemoryPacingState`: one process's schedule, rate record and cool-down, held in memory.

The same algorithm as the Redis state's scripts (``box_sessions.redis``), written for one event
loop; the package's contract tests run both through the same cases, so they cannot drift.
"""

from __future__ import annotations

import heapq
import math

import attrs

from .._clock import Clock, SystemClock
from .._shared import PacingAnswer, PacingReading, RateRecord, Refusal, Reservation

__all__ = ["InMemoryPacingState"]


@attrs.frozen
class _Slot:
    """What the state notes of a reservation: its schedule's generation, and its times."""

    generation: int
    send_at: float
    tat_before: float
    tat_after: float


class InMemoryPacingState:
    """The `box_sessions.PacingState` of one process: schedule (GCRA), rate record and cool-down in memory.

    A slot given back in the middle of the schedule is kept as a hole that the next reservation
    fills, so a given-back slot is reused but never doubled; one given back at the end moves the
    schedule back. Every client of one process that is given the same state paces with the others.

    Args:
        clock: The clock of the clients that use it (``box_sessions.SystemClock()`` by default).
    """

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock or SystemClock()
        self._cooldown_until = -math.inf
        self._tat = -math.inf  # theoretical arrival time of the next request (GCRA)
        self._generation = 0  # bumped when the schedule restarts: older slots are void
        self._holes: list[tuple[float, int, _Slot]] = []  # given-back slots, earliest first
        self._hole_ends: dict[float, _Slot] = {}  # the same, by the schedule time they end at
        self._record = RateRecord()
        self._set_at = self._clock.monotonic()
        self._accepted = 0

    def _reading(self, now: float) -> PacingReading:
        return PacingReading(
            record=self._record,
            age=now - self._set_at,
            accepted=self._accepted,
            cooldown=max(0.0, self._cooldown_until - now),
        )

    async def reserve(
        self,
        *,
        interval: float,
        burst: int,
        epoch: int | None,
        max_wait: float | None,
        max_cooldown: float | None,
    ) -> Reservation | Refusal:
        now = self._clock.monotonic()
        reading = self._reading(now)
        start = now + reading.cooldown
        if (epoch is not None and epoch != self._record.epoch) or (
            max_cooldown is not None and reading.cooldown > max_cooldown
        ):
            return Refusal(wait=reading.cooldown, reading=reading)
        slot = self._take_hole(now, start)
        from_hole = slot is not None
        if slot is None:
            tat = max(self._tat, start)
            slot = _Slot(self._generation, max(start, tat - (burst - 1) * interval), tat, tat + interval)
        wait = slot.send_at - now
        if max_wait is not None and wait > max_wait:
            if from_hole:
                self._add_hole(slot)  # refused: it stays free
            return Refusal(wait=wait, reading=reading)
        if not from_hole:
            self._tat = slot.tat_after
        return Reservation(wait=wait, reading=reading, key=slot)

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

    async def record(self, answer: PacingAnswer) -> PacingReading:
        now = self._clock.monotonic()
        if answer.status == 429:
            if answer.cooldown is not None:
                self._cooldown_until = max(self._cooldown_until, now + answer.cooldown)
            lowered = answer.lowered
            if lowered is not None and lowered.epoch == self._record.epoch + 1:
                self._restart(lowered, now)
        elif answer.status < 500:
            self._accepted += 1
        return self._reading(now)

    def _restart(self, record: RateRecord, now: float) -> None:
        """Store a new rate record and restart the schedule at it: every slot reserved before is void."""
        self._record = record
        self._set_at = now
        self._accepted = 0
        self._generation += 1
        self._tat = -math.inf
        self._holes.clear()
        self._hole_ends.clear()

    def __repr__(self) -> str:
        return f"InMemoryPacingState(epoch={self._record.epoch}, holes={len(self._hole_ends)})"
