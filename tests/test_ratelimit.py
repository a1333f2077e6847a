"""The client-side rate limiter: even spacing, slots given back, following 429s down and probing back up."""

from __future__ import annotations

import asyncio
import random

import pytest
import respx

from box_sessions import BoxClient, DeveloperTokenAuth, RateLimit
from box_sessions._transport import InProcessPacingState, PacingState, RateLimiter, Refusal, Reservation
from box_sessions._transport._ratelimit import SETTLE
from box_sessions.testing import FakeClock

from .conftest import USERS_URL, MakeClient, accepted, box_error


async def reserve(state: PacingState, interval: float = 0.1, max_wait: float | None = None) -> Reservation:
    reservation = await state.reserve(interval, burst=1, max_wait=max_wait)
    assert isinstance(reservation, Reservation)
    return reservation


# -- the schedule --------------------------------------------------------------------------------


async def test_requests_are_spaced_evenly() -> None:
    """At 10 a second, each reservation waits 0.1 s more than the one before (burst 1)."""
    state = InProcessPacingState(FakeClock())
    assert [(await reserve(state)).wait for _ in range(4)] == pytest.approx([0.0, 0.1, 0.2, 0.3])


async def test_burst_lets_the_first_requests_go_at_once() -> None:
    """With burst 3, three requests go without waiting, then the spacing applies."""
    state = InProcessPacingState(FakeClock())
    waits = [(await state.reserve(0.1, burst=3, max_wait=None)).wait for _ in range(5)]
    assert waits == pytest.approx([0.0, 0.0, 0.0, 0.1, 0.2])


async def test_idle_time_is_not_banked_beyond_the_burst() -> None:
    """After a quiet minute only the burst goes at once, not a minute's worth."""
    clock = FakeClock()
    state = InProcessPacingState(clock)
    await reserve(state)
    clock.advance(60)
    assert [(await reserve(state)).wait for _ in range(2)] == pytest.approx([0.0, 0.1])


async def test_a_refused_reservation_keeps_no_slot() -> None:
    """A reservation refused for waiting too long leaves the schedule as it was."""
    state = InProcessPacingState(FakeClock())
    await reserve(state, interval=1.0)
    refused = await state.reserve(1.0, burst=1, max_wait=0.5)
    assert refused == Refusal(1.0)
    assert (await reserve(state, interval=1.0)).wait == pytest.approx(1.0)


async def test_a_slot_given_back_in_the_middle_is_reused_once() -> None:
    """A slot given back between two others is taken by the next reservation, and only by it."""
    state = InProcessPacingState(FakeClock())
    first, second, third = [await reserve(state, interval=1.0) for _ in range(3)]
    await state.give_back(second)
    assert [(await reserve(state, interval=1.0)).wait for _ in range(2)] == pytest.approx([1.0, 3.0])
    assert (first.wait, third.wait) == (0.0, 2.0)


async def test_slots_given_back_in_any_order_empty_the_schedule() -> None:
    """Ten slots given back in a random order leave the next reservation free to go at once."""
    state = InProcessPacingState(FakeClock())
    reservations = [await reserve(state, interval=1.0) for _ in range(10)]
    random.Random(3).shuffle(reservations)
    for reservation in reservations:
        await state.give_back(reservation)
    assert (await reserve(state, interval=1.0)).wait == 0.0


async def test_burst_of_refusals_then_one_quiet_interval_sends_at_once() -> None:
    """30 calls at 60 a minute with 2 s to spare: 3 get slots, 27 are refused, and after the 3 slots
    and one interval of quiet the next call goes at once (it used to wait 27 s more, and grow)."""
    clock = FakeClock()
    limiter = RateLimiter(RateLimit(requests_per_minute=60), clock)
    outcomes = [await limiter.state.reserve(1.0, burst=1, max_wait=2.0) for _ in range(30)]
    assert sum(isinstance(o, Reservation) for o in outcomes) == 3
    clock.advance(3 + 1)
    await limiter.acquire(max_wait=2.0)
    assert clock.sleeps == []


async def test_a_cancelled_waiter_gives_its_slot_back() -> None:
    """A caller cancelled while waiting for its slot frees it: the next caller needs not wait for it."""
    clock = FakeClock()
    limiter = RateLimiter(RateLimit(requests_per_minute=60), clock)
    await limiter.acquire()
    waiter = asyncio.create_task(limiter.acquire())  # its slot is 1 s ahead; it sleeps
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert (await reserve(limiter.state, interval=1.0)).wait == 0.0


async def test_acquire_refuses_a_wait_past_max_wait() -> None:
    """acquire(max_wait=...) raises TimeoutError carrying the wait instead of waiting too long."""
    clock = FakeClock()
    limiter = RateLimiter(RateLimit(requests_per_minute=60), clock)
    await limiter.acquire()
    with pytest.raises(TimeoutError) as raised:
        await limiter.acquire(max_wait=0.5)
    assert raised.value.args == (pytest.approx(1.0),)
    assert clock.sleeps == []


async def test_no_slot_starts_inside_the_cool_down() -> None:
    """A 429's retry-after holds the schedule: the next slot is at its end."""
    clock = FakeClock()
    limiter = RateLimiter(RateLimit(requests_per_minute=600), clock)
    reservation = await limiter.acquire()
    await limiter.on_answer(reservation, 429, 3.0)
    assert (await limiter.state.reserve(0.1, burst=1, max_wait=None)).wait == pytest.approx(3.0)


# -- following 429s down -------------------------------------------------------------------------


async def answer(limiter: RateLimiter, clock: FakeClock, seconds: float, per_second: float) -> None:
    """Answer accepted requests at ``per_second`` for ``seconds``, as Box would."""
    for _ in range(round(seconds * per_second)):
        clock.advance(1 / per_second)
        await limiter.on_answer(None, 202, None)


async def refuse(limiter: RateLimiter) -> None:
    """A 429 (no retry-after) for a request scheduled now."""
    await limiter.on_answer(await limiter.state.reserve(0.0, burst=1, max_wait=None), 429, None)  # type: ignore[arg-type]


async def test_first_429_halves_the_rate() -> None:
    """With nothing to measure from, a 429 halves the rate."""
    limiter = RateLimiter(RateLimit(requests_per_minute=600), FakeClock())
    await refuse(limiter)
    assert await limiter.current_rate() == pytest.approx(5.0)
    assert limiter.decreases == 1


async def test_next_429_settles_just_under_what_box_accepted() -> None:
    """After a decrease, a 429 sets the rate just under what Box accepted since, in one step."""
    clock = FakeClock()
    limiter = RateLimiter(RateLimit(requests_per_minute=1000), clock)
    await refuse(limiter)
    await answer(limiter, clock, 5, 6.0)
    await refuse(limiter)
    assert await limiter.current_rate() == pytest.approx(SETTLE * 6.0, rel=0.01)


async def test_429s_of_requests_scheduled_before_the_decrease_are_ignored() -> None:
    """A burst of 429s for requests scheduled at the old rate lowers it once."""
    clock = FakeClock()
    limiter = RateLimiter(RateLimit(requests_per_minute=600), clock)
    in_flight = [await limiter.state.reserve(0.1, burst=1, max_wait=None) for _ in range(5)]
    for reservation in in_flight:
        await limiter.on_answer(reservation, 429, None)  # type: ignore[arg-type]
    assert limiter.decreases == 1
    assert await limiter.current_rate() == pytest.approx(5.0)


async def test_decrease_voids_slots_reserved_at_the_old_rate() -> None:
    """A request that waited for a slot at the old rate reserves again after a decrease."""
    clock = FakeClock()
    limiter = RateLimiter(RateLimit(requests_per_minute=600), clock)
    first = await limiter.acquire()
    waiting = asyncio.create_task(limiter.acquire())  # reserves the 0.1 s slot and sleeps
    await asyncio.sleep(0)
    await limiter.on_answer(first, 429, None)  # 10/s -> 5/s while it sleeps
    reservation = await waiting
    assert reservation.epoch == 1  # its second reservation, at the new rate
    assert clock.sleeps == pytest.approx([0.1])


async def test_rate_never_goes_below_the_minimum() -> None:
    """Repeated 429s stop at min_requests_per_minute."""
    clock = FakeClock()
    limiter = RateLimiter(RateLimit(requests_per_minute=600, min_requests_per_minute=60), clock)
    for _ in range(10):
        await refuse(limiter)
    assert await limiter.current_rate() == pytest.approx(1.0)


async def test_not_adaptive_keeps_the_rate() -> None:
    """adaptive=False ignores 429s."""
    limiter = RateLimiter(RateLimit(requests_per_minute=600, adaptive=False), FakeClock())
    await refuse(limiter)
    assert await limiter.current_rate() == pytest.approx(10.0)


# -- probing back up -----------------------------------------------------------------------------


async def settle(clock: FakeClock, allowed: float = 6.0) -> RateLimiter:
    """A limiter at 1,000 a minute that met Box allowing ``allowed`` a second, twice."""
    limiter = RateLimiter(RateLimit(requests_per_minute=1000), clock)
    await refuse(limiter)
    await answer(limiter, clock, 5, allowed)
    await refuse(limiter)
    return limiter


async def test_rate_stays_just_under_the_ceiling_at_first() -> None:
    """Two seconds after settling, the rate is still within 2% of where it settled."""
    clock = FakeClock()
    limiter = await settle(clock)
    settled = await limiter.current_rate()
    clock.advance(2)
    assert settled <= await limiter.current_rate() <= 1.02 * settled


async def test_rate_climbs_back_to_the_limit_within_seconds_when_box_lifts_it() -> None:
    """With no 429, a rate settled at 400 a minute is back at 1,000 a minute 10 s later (it took 2 minutes)."""
    clock = FakeClock()
    limiter = await settle(clock, allowed=400 / 60)
    clock.advance(5)
    assert await limiter.current_rate() < 1000 / 60
    clock.advance(5)
    assert await limiter.current_rate() == pytest.approx(1000 / 60)


async def test_a_ceiling_met_again_slows_the_next_probe() -> None:
    """A 429 that comes back near the same ceiling confirms it: the rate then climbs more slowly."""
    once = FakeClock()
    probing = await settle(once)
    once.advance(6)
    twice = FakeClock()
    confirmed = await settle(twice)
    await answer(confirmed, twice, 6, 6.0)
    await refuse(confirmed)
    twice.advance(6)
    assert confirmed.decreases == 3
    assert await confirmed.current_rate() < 0.9 * await probing.current_rate()


async def test_rate_never_exceeds_the_configured_one() -> None:
    """However long the calm, the rate stops at requests_per_minute."""
    clock = FakeClock()
    limiter = await settle(clock)
    clock.advance(3600)
    assert await limiter.current_rate() == pytest.approx(1000 / 60)


# -- options and the client ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"requests_per_minute": 0}, id="rate-0"),
        pytest.param({"burst": 0}, id="burst-0"),
        pytest.param({"requests_per_minute": 10, "min_requests_per_minute": 20}, id="min-above-max"),
    ],
)
def test_invalid_rate_limit_refused(kwargs: dict[str, float]) -> None:
    """Nonsense settings raise at construction, naming the field."""
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        RateLimit(**kwargs)  # type: ignore[arg-type]


def test_rate_limit_option_type_checked() -> None:
    """BoxClient(rate_limit=...) takes a RateLimit or None."""
    with pytest.raises(TypeError, match="rate_limit"):
        BoxClient(DeveloperTokenAuth("t"), rate_limit=1000)  # type: ignore[arg-type]


async def test_client_requests_are_paced(
    respx_mock: respx.MockRouter, make_client: MakeClient, clock: FakeClock
) -> None:
    """Every request of a client goes through the limiter: 3 calls at 60/min wait 1 s each after the first."""
    respx_mock.post(USERS_URL).mock(return_value=accepted())
    async with make_client(rate_limit=RateLimit(requests_per_minute=60)) as client:
        for _ in range(3):
            await client.session_termination.terminate_users_sessions(user_ids=["1"])
    assert clock.sleeps == pytest.approx([1.0, 1.0])


async def test_429_through_client_lowers_the_rate(respx_mock: respx.MockRouter, make_client: MakeClient) -> None:
    """A 429 seen by the transport slows the client's limiter."""
    respx_mock.post(USERS_URL).mock(side_effect=[box_error(429, retry_after="1"), accepted()])
    async with make_client(rate_limit=RateLimit(requests_per_minute=600)) as client:
        await client.session_termination.terminate_users_sessions(user_ids=["1"])
        limiter = client._transport.pacing.limiter
        assert limiter is not None
        assert limiter.decreases == 1
        assert limiter.rate < 10.0
