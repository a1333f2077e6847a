"""Client-side pacing: a rate limiter shared by every request of a client, that follows Box down and back up.

Box allows each user about 1,000 API calls a minute, and lowers that under load without saying
so. The limiter spaces requests at the configured rate (GCRA: each request reserves the next free
slot, so concurrent requests never burst past the rate). A slot that is not used (its caller gave
up or was cancelled) is given back. The schedule, the rate and the cool-down live in a
`PacingState`; the decisions below live here, in one place.

With ``adaptive=True`` the rate follows Box's 429s:

- **Down.** A 429 for a request scheduled at the current rate lowers it. When the previous
  decrease was recent enough to measure from, the answers Box accepted since then, divided by the
  time since, are a measure of what Box allows (it cannot be more: Box refused requests at both
  ends of that span); the rate settles just under it (`SETTLE`) and that measure is remembered as
  the ceiling. The first 429 (or one after a long calm) has nothing to measure from, and halves
  the rate. 429s of requests scheduled before a decrease say nothing new and are ignored.
- **Up.** While no 429 comes, the rate probes upward along a cubic curve of the time since the
  decrease, as TCP CUBIC does: slowly at first, just under the ceiling where the last 429 came,
  then faster and faster, so a lifted limit is found within seconds. Each 429 that comes back near
  the same ceiling confirms it and makes the next probe slower; a ceiling that moved starts afresh.
  The rate never exceeds the configured one.
"""

from __future__ import annotations

import logging

import attrs

from .._clock import Clock
from ._pacing_state import InProcessPacingState, PacingState, RateReading, RateRecord, Refusal, Reservation

__all__ = ["RateLimit", "RateLimiter", "adaptive_rate"]

logger = logging.getLogger("box_sessions")

#: Share of the measured allowance the rate settles at after a measured 429.
SETTLE = 0.98
#: Share of the rate kept after a 429 with nothing to measure from.
HALVE = 0.5
#: A measure needs at least this many accepted answers since the previous decrease ...
MEASURE_MIN_ACCEPTED = 8
#: ... and the previous decrease at most this many seconds ago (older spans mix other rates).
MEASURE_MAX_AGE = 30.0
#: The upward probe: the rate ``t`` seconds after a decrease is ``rate * (1 + PROBE * t**3)``,
#: so it is 1% higher after 1.7 s, 10% after 3.7 s and doubles after 8 s ...
PROBE = 0.002
#: ... and each confirmation of the same ceiling divides ``PROBE`` by this, up to `MAX_CONFIRMED` times.
CONFIRM_SLOWDOWN = 8.0
MAX_CONFIRMED = 2
#: A 429 whose measure is within this share of the ceiling confirms it.
CONFIRM_TOLERANCE = 0.1


@attrs.frozen(kw_only=True)
class RateLimit:
    """How fast a client sends, shared by all its requests (the token request excepted).

    Args:
        requests_per_minute: The most the client sends. Default: Box's documented limit of
            about 1,000 calls a minute per user.
        burst: Requests that may leave at once after a quiet spell. ``1`` spaces every request
            evenly, which keeps clear of Box's limit whatever its bucket size.
        adaptive: Follow Box's 429s down (Box applies lower limits under load) and probe back up
            when they stop. See the module docstring.
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


def adaptive_rate(reading: RateReading, *, max_rate: float, min_rate: float) -> float:
    """Requests a second to send at now, given the rate record as read (see the module docstring)."""
    record = reading.record
    if record.rate is None:
        return max_rate
    probe = PROBE / CONFIRM_SLOWDOWN ** min(record.confirmed, MAX_CONFIRMED)
    return max(min_rate, min(max_rate, record.rate * (1.0 + probe * reading.age**3)))


class RateLimiter:
    """The running limiter for one client. Private: configured through `RateLimit`.

    Args:
        limit: The options.
        clock: The client's clock.
        state: Where the schedule, the rate and the cool-down are kept; this process's memory
            by default. Processes that share one (see `PacingState`) pace together.
    """

    def __init__(self, limit: RateLimit, clock: Clock, state: PacingState | None = None) -> None:
        self.limit = limit
        self.state: PacingState = state or InProcessPacingState(clock)
        self._clock = clock
        self._max_rate = limit.requests_per_minute / 60.0
        self._min_rate = limit.min_requests_per_minute / 60.0
        self.rate = self._max_rate
        """The rate in requests a second, as last computed."""
        self.decreases = 0
        """Decreases this limiter made."""

    async def current_rate(self) -> float:
        """The rate in requests a second, now."""
        return self._rate_of(await self.state.get_rate())

    def _rate_of(self, reading: RateReading) -> float:
        if self.limit.adaptive:
            self.rate = adaptive_rate(reading, max_rate=self._max_rate, min_rate=self._min_rate)
        return self.rate

    async def acquire(self, max_wait: float | None = None) -> Reservation:
        """Wait for a slot and return it (for `on_answer`).

        A slot made void while waiting (the rate was lowered, or a cool-down began) is traded for
        a new one. A caller cancelled while waiting gives its slot back.

        Raises:
            TimeoutError: the wait would be longer than ``max_wait`` (nothing waited, nothing
                kept); its argument is the wait in seconds.
        """
        started = self._clock.monotonic()
        while True:
            interval = 1.0 / self._rate_of(await self.state.get_rate())
            left = None if max_wait is None else max_wait - (self._clock.monotonic() - started)
            reservation = await self.state.reserve(interval, burst=self.limit.burst, max_wait=left)
            if isinstance(reservation, Refusal):
                raise TimeoutError(reservation.wait)
            if reservation.wait <= 0:
                return reservation
            try:
                await self._clock.sleep(reservation.wait)
            except BaseException:
                await self.state.give_back(reservation)
                raise
            if await self._still_valid(reservation):
                return reservation

    async def _still_valid(self, reservation: Reservation) -> bool:
        if (await self.state.get_rate()).record.epoch != reservation.epoch:
            return False  # the rate was lowered while this one waited: its slot was at the old rate
        return await self.state.cooldown_remaining() <= 0

    async def on_answer(self, reservation: Reservation | None, status: int, retry_after: float | None) -> None:
        """Learn from the answer to a request sent in ``reservation`` (``None``: sent unpaced).

        Args:
            reservation: The request's slot.
            status: The answer's status (a 5xx says nothing about the rate).
            retry_after: The answer's ``retry-after`` in seconds, if any: no slot starts before it.
        """
        if status == 429:
            if retry_after is not None:
                await self.state.hold_cooldown(retry_after)
            if self.limit.adaptive and reservation is not None:
                await self._lower(reservation)
        elif status < 500:
            await self.state.count_accepted()

    async def _lower(self, reservation: Reservation) -> None:
        reading = await self.state.get_rate()
        record = reading.record
        if reservation.epoch != record.epoch:
            return  # scheduled at a rate lowered since: that decrease already answered it
        sending = self._rate_of(reading)
        allowed = _measure(reading)
        if allowed is None:
            new = RateRecord(rate=max(self._min_rate, HALVE * sending))
        else:
            near = record.ceiling is not None and abs(allowed - record.ceiling) <= CONFIRM_TOLERANCE * record.ceiling
            new = RateRecord(
                rate=max(self._min_rate, min(sending, SETTLE * allowed)),
                ceiling=allowed,
                confirmed=record.confirmed + 1 if near else 0,
            )
        if await self.state.set_rate(new, expected_epoch=record.epoch):
            self.decreases += 1
            self.rate = new.rate or self.rate
            logger.info(
                "Box answered 429 at %.0f requests a minute; pacing at %.0f a minute (Box allowed %s)",
                sending * 60,
                self.rate * 60,
                "an unknown rate" if allowed is None else f"{allowed * 60:.0f} a minute since the last 429",
            )

    def __repr__(self) -> str:
        return f"RateLimiter(rate={self.rate * 60:.0f}/min, max={self._max_rate * 60:.0f}/min)"


def _measure(reading: RateReading) -> float | None:
    """Requests a second Box accepted since the last decrease, or ``None`` when that says too little."""
    if reading.record.rate is None or reading.age > MEASURE_MAX_AGE or reading.accepted < MEASURE_MIN_ACCEPTED:
        return None
    return reading.accepted / reading.age
