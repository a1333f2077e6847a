"""`Pacer`: one client's rate limit and 429 cool-down, as a request meets them, over a `PacingState`.

A request meets pacing twice. Before it is sent, `Pacer.reserve` reserves a slot of the schedule
(never inside the cool-down) and waits for it; a wait the request may not make (a cool-down
longer than ``max_retry_after``, or a slot past the call's deadline) fails it at once, unsent
(`PacingRefused`). Once it is answered, `Pacer.record` tells the state: a 429 starts the cool-down
for every sender of the state (Box's ``retry-after``, or the back-off the client chose) and, with
an adaptive rate, lowers the rate (`._rate`); another answer counts as accepted. The state is the
one keeper of the cool-down; the pacer only keeps its latest reading, to compute the next interval
and to tell a slot made void while it waited (the rate changed, or a cool-down began), without
asking the state again. With a state shared through Redis, that is one round trip to reserve and
one to record.
"""

from __future__ import annotations

import logging

import attrs

from .._clock import Clock
from .._errors import BoxError, BoxTimeoutError, RateLimitError
from .._shared import PacingAnswer, PacingReading, PacingState, Refusal, Reservation
from .._tasks import finish
from ._options import RateLimit
from ._rate import adaptive_rate, lowered

__all__ = ["Pacer", "PacingRefused"]

logger = logging.getLogger("box_sessions")

# How many times in a row a reservation is asked again because the rate changed meanwhile (another
# sender lowered it), before the slot is taken at whatever rate the state holds.
_RATE_CHANGES = 4
# A cool-down end this close to now counts as over (a shared state's clock has microseconds).
_TOLERANCE = 1e-3


class PacingRefused(Exception):  # noqa: N818 - a carrier, not an error users see
    """The request may not wait that long: ``error`` says why (a `RateLimitError` or a `BoxTimeoutError`)."""

    def __init__(self, error: BoxError) -> None:
        super().__init__()
        self.error = error


class Pacer:
    """The rate limit and the cool-down of one client, over the state it paces with.

    Args:
        state: Where the schedule, the rate and the cool-down live (this process's memory, or a
            share's state behind a fallback).
        limit: The client's rate limit; ``None`` sends unpaced (the cool-down still holds).
        clock: The client's clock.
    """

    def __init__(self, state: PacingState, limit: RateLimit | None, clock: Clock) -> None:
        self.state = state
        self.limit = limit
        self._clock = clock
        self._max_rate = 0.0 if limit is None else limit.requests_per_minute / 60.0
        self._min_rate = 0.0 if limit is None else limit.min_requests_per_minute / 60.0
        self._reading = PacingReading()
        self._read_at = clock.monotonic()
        self.decreases = 0
        """Decreases of the rate this client made."""
        self._lowered_epoch = 0  # the epoch of the last decrease this client made

    @property
    def rate(self) -> float | None:
        """Requests a second the client sends at now; ``None`` when it is not paced."""
        if self.limit is None:
            return None
        return self._rate_at(self._reading, self._reading.age + self._clock.monotonic() - self._read_at)

    @property
    def cooldown(self) -> float:
        """Seconds left of the cool-down as last read (0 when none)."""
        return max(0.0, self._reading.cooldown - (self._clock.monotonic() - self._read_at))

    def _rate_at(self, reading: PacingReading, age: float) -> float:
        assert self.limit is not None  # noqa: S101 - callers check
        if not self.limit.adaptive:
            return self._max_rate
        return adaptive_rate(reading.record, age, max_rate=self._max_rate, min_rate=self._min_rate)

    def _latest(self) -> PacingReading:
        """The latest reading, aged to now."""
        elapsed = self._clock.monotonic() - self._read_at
        return attrs.evolve(
            self._reading, age=self._reading.age + elapsed, cooldown=max(0.0, self._reading.cooldown - elapsed)
        )

    def _learn(self, reading: PacingReading) -> None:
        self._reading, self._read_at = reading, self._clock.monotonic()

    async def reserve(self, *, deadline: float | None, max_cooldown: float) -> Reservation | None:
        """Wait until a request may be sent, and return its slot (``None``: the client is not paced).

        Args:
            deadline: The call's deadline on the clock's ``monotonic()``, or ``None``.
            max_cooldown: The longest cool-down the request waits out (``RetryPolicy.max_retry_after``).

        Raises:
            PacingRefused: the cool-down or the slot is further away than the request may wait;
                nothing was waited for and nothing is kept.
        """
        rate_changes = 0
        while True:
            remaining = None if deadline is None else deadline - self._clock.monotonic()
            if remaining is not None and remaining <= 0:
                raise PacingRefused(BoxTimeoutError("the call's deadline passed before the request could be sent"))
            longest_cooldown = max_cooldown if remaining is None else min(max_cooldown, remaining)
            epoch = self._reading.record.epoch if rate_changes < _RATE_CHANGES else None
            rate = self.rate
            interval = 0.0 if rate is None else 1.0 / rate
            answer = await self.state.reserve(
                interval=interval,
                burst=1 if self.limit is None else self.limit.burst,
                epoch=None if self.limit is None else epoch,
                max_wait=remaining,
                max_cooldown=longest_cooldown,
            )
            self._learn(answer.reading)
            if isinstance(answer, Refusal):
                if self.limit is not None and epoch is not None and answer.reading.record.epoch != epoch:
                    rate_changes += 1  # another sender changed the rate: reserve at the new one
                    continue
                raise PacingRefused(_refusal_error(answer, remaining, longest_cooldown, max_cooldown))
            if answer.wait > 0:
                await self._wait(answer)
                if not self._still_valid(answer):
                    continue
            return None if self.limit is None else answer

    async def _wait(self, reservation: Reservation) -> None:
        try:
            await self._clock.sleep(reservation.wait)
        except BaseException:
            await finish(self.state.give_back(reservation))  # a caller that gave up frees its slot
            raise

    def _still_valid(self, reservation: Reservation) -> bool:
        """Whether the slot still holds, as far as the latest reading tells: same rate, no cool-down begun."""
        if self.limit is not None and self._reading.record.epoch != reservation.reading.record.epoch:
            return False  # the rate was lowered while this one waited: its slot was at the old rate
        return self.cooldown <= _TOLERANCE

    async def record(self, reservation: Reservation | None, status: int, *, cooldown: float | None) -> None:
        """Tell the state how a request sent in ``reservation`` was answered.

        Args:
            reservation: The request's slot, or ``None`` when it was sent unpaced.
            status: The answer's status.
            cooldown: For a 429: seconds every sender holds off (Box's ``retry-after``, or the
                back-off the client chose).
        """
        decrease = sending = None
        if status == 429 and reservation is not None and self.limit is not None and self.limit.adaptive:
            # Measured from the latest reading (as fresh as this client's last round trip), not the
            # slot's: a slot is reserved seconds before it is sent when many requests queue, and
            # the answers accepted meanwhile are what tells how much Box allows.
            latest = self._latest()
            if latest.record.epoch == reservation.reading.record.epoch:  # else a decrease answered it
                sending = self._rate_at(latest, latest.age)
                decrease = lowered(latest, sending=sending, min_rate=self._min_rate)
        reading = await self.state.record(
            PacingAnswer(status=status, cooldown=cooldown if status == 429 else None, lowered=decrease)
        )
        self._learn(reading)
        if decrease is None or sending is None or reading.record != decrease or decrease.epoch <= self._lowered_epoch:
            return  # no decrease, another sender's came first, or this one was counted already
        self._lowered_epoch = decrease.epoch
        self.decreases += 1
        logger.info(
            "Box answered 429 at %.0f requests a minute; pacing at %.0f a minute (Box allowed %s)",
            sending * 60,
            (decrease.rate or sending) * 60,
            "an unknown rate"
            if decrease.ceiling is None
            else f"{decrease.ceiling * 60:.0f} a minute since the last 429",
        )

    def __repr__(self) -> str:
        rate = self.rate
        shown = "unpaced" if rate is None else f"{rate * 60:.0f}/min, max={self._max_rate * 60:.0f}/min"
        return f"Pacer({shown}, state={self.state!r})"


def _refusal_error(refusal: Refusal, remaining: float | None, longest: float, max_cooldown: float) -> BoxError:
    """Why a request may not wait: a cool-down longer than ``longest`` seconds, or a slot past its deadline."""
    cooldown = refusal.reading.cooldown
    if cooldown > 0 and cooldown > longest:
        reason = (
            f"longer than max_retry_after ({max_cooldown:g} s)"
            if longest == max_cooldown
            else f"longer than the {max(longest, 0.0):.1f} s left before this call's deadline"
        )
        return RateLimitError(
            f"Box asked the client to hold off for {cooldown:.1f} s more after a 429, {reason}; not sent",
            status=429,
            code="rate_limit_exceeded",
            retry_after=cooldown,
        )
    return BoxTimeoutError(
        f"the client's rate limit would hold this request for {refusal.wait:.1f} s, longer than "
        f"the {max(remaining or 0.0, 0.0):.1f} s left before this call's deadline"
    )
