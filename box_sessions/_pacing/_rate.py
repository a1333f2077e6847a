"""The adaptive rate: how fast to send now, and how far to slow down after a 429. Decisions only, no state.

Box allows each user about 1,000 API calls a minute, and lowers that under load without saying
so. With ``RateLimit(adaptive=True)`` the rate follows Box's 429s:

- **Down.** A 429 for a request scheduled at the current rate lowers it. When the previous
  decrease was recent enough to measure from, the answers Box accepted since then, divided by the
  time since, are a measure of what Box allows (it cannot be more, give or take one request: Box
  refused requests at both ends of that span); the rate settles just under it (`SETTLE`) and
  that measure is remembered as the ceiling. The first 429 (or one after a long calm) has
  nothing to measure from, and halves the rate. 429s of requests scheduled before a decrease say
  nothing new and are ignored.
- **Up.** While no 429 comes, the rate probes upward along a cubic curve of the time since the
  decrease, as TCP CUBIC does: slowly at first, just under the ceiling where the last 429 came,
  then faster and faster, so a lifted limit is found within seconds. Each 429 that comes back near
  the same ceiling confirms it and makes the next probe slower; a ceiling that moved starts afresh.
  The rate never exceeds the configured one.
"""

from __future__ import annotations

from .._shared import PacingReading, RateRecord

__all__ = ["adaptive_rate", "lowered"]

#: Share of the measured allowance the rate settles at after a measured 429. The measure is
#: already a floor: Box refused at both ends of its span, and the span holds the cool-down Box
#: asked for, whose refill Box's bucket may not have kept (with Box's whole-second ``retry-after``,
#: about one request per 429). 0.98 on top of it left the rate 3 to 4% under a halved limit.
SETTLE = 0.99
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


def adaptive_rate(record: RateRecord, age: float, *, max_rate: float, min_rate: float) -> float:
    """Requests a second to send at, ``age`` seconds after ``record`` was set."""
    if record.rate is None:
        return max_rate
    probe = PROBE / CONFIRM_SLOWDOWN ** min(record.confirmed, MAX_CONFIRMED)
    return max(min_rate, min(max_rate, record.rate * (1.0 + probe * age**3)))


def measured(reading: PacingReading) -> float | None:
    """Requests a second Box accepted since the last decrease, or ``None`` when that says too little."""
    if reading.record.rate is None or reading.age > MEASURE_MAX_AGE or reading.accepted < MEASURE_MIN_ACCEPTED:
        return None
    return reading.accepted / reading.age


def lowered(reading: PacingReading, *, sending: float, min_rate: float) -> RateRecord:
    """The rate record a 429 leads to, for a request sent at ``sending`` requests a second under ``reading``.

    Its epoch follows the reading's: a state stores it only if no other decrease came first.
    """
    record = reading.record
    allowed = measured(reading)
    if allowed is None:
        return RateRecord(rate=max(min_rate, HALVE * sending), epoch=record.epoch + 1)
    near = record.ceiling is not None and abs(allowed - record.ceiling) <= CONFIRM_TOLERANCE * record.ceiling
    return RateRecord(
        rate=max(min_rate, min(sending, SETTLE * allowed)),
        ceiling=allowed,
        confirmed=record.confirmed + 1 if near else 0,
        epoch=record.epoch + 1,
    )
