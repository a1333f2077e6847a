"""The client-side rate limiter: even spacing, burst, adaptive decrease and recovery."""

from __future__ import annotations

import asyncio

import pytest
import respx

from box_sessions import BoxClient, DeveloperTokenAuth, RateLimit
from box_sessions._transport import RateLimiter
from box_sessions._transport._ratelimit import HOLD_AFTER_DECREASE
from box_sessions.testing import FakeClock

from .conftest import USERS_URL, MakeClient, accepted, box_error


def test_requests_are_spaced_evenly() -> None:
    """At 600 a minute, each request waits 0.1 s more than the one before (burst 1)."""
    clock = FakeClock()
    limiter = RateLimiter(RateLimit(requests_per_minute=600), clock)
    waits = [limiter.reserve() for _ in range(4)]
    assert waits == pytest.approx([0.0, 0.1, 0.2, 0.3])


def test_burst_lets_the_first_requests_go_at_once() -> None:
    """With burst 3, three requests go without waiting, then the spacing applies."""
    clock = FakeClock()
    limiter = RateLimiter(RateLimit(requests_per_minute=600, burst=3), clock)
    waits = [limiter.reserve() for _ in range(5)]
    assert waits == pytest.approx([0.0, 0.0, 0.0, 0.1, 0.2])


def test_idle_time_is_not_banked_beyond_the_burst() -> None:
    """After a quiet minute the limiter allows only the burst, not a minute's worth."""
    clock = FakeClock()
    limiter = RateLimiter(RateLimit(requests_per_minute=600), clock)
    limiter.reserve()
    clock.advance(60)
    assert [limiter.reserve() for _ in range(2)] == pytest.approx([0.0, 0.1])


def feed(limiter: RateLimiter, clock: FakeClock, seconds: float, rate: float) -> None:
    """Record ``rate`` accepted requests a second for ``seconds``."""
    for _ in range(int(seconds * rate)):
        clock.advance(1 / rate)
        limiter.on_accepted()


def test_429_drops_rate_to_what_box_accepted() -> None:
    """A 429 after Box accepted 8 a second sets the rate near 90% of that, in one step."""
    clock = FakeClock()
    limiter = RateLimiter(RateLimit(requests_per_minute=1000), clock)
    feed(limiter, clock, 5, 8.0)
    limiter.on_rate_limited(reserved_at=clock.now)
    assert limiter.rate == pytest.approx(0.9 * 8.0, rel=0.05)
    assert limiter.decreases == 1


def test_measurement_over_a_short_span() -> None:
    """Answers measured over a fraction of a second give their true rate, not a rate per whole second."""
    clock = FakeClock()
    limiter = RateLimiter(RateLimit(requests_per_minute=60000), clock)
    feed(limiter, clock, 0.2, 100.0)  # 20 answers in 0.2 s
    limiter.on_rate_limited(reserved_at=clock.now)
    assert limiter.rate == pytest.approx(0.9 * 100.0, rel=0.1)


def test_429_without_measurements_halves() -> None:
    """With too few accepted requests to measure, a 429 halves the rate."""
    clock = FakeClock()
    limiter = RateLimiter(RateLimit(requests_per_minute=600), clock)
    limiter.on_rate_limited(reserved_at=0.0)
    assert limiter.rate == pytest.approx(5.0)


def test_429s_of_requests_scheduled_before_the_decrease_are_ignored() -> None:
    """A burst of 429s for requests scheduled at the old rate counts once."""
    clock = FakeClock()
    limiter = RateLimiter(RateLimit(requests_per_minute=600), clock)
    clock.advance(1)
    for _ in range(5):
        limiter.on_rate_limited(reserved_at=0.5)
    assert limiter.decreases == 1
    assert limiter.rate == pytest.approx(5.0)


def test_rate_never_goes_below_the_minimum() -> None:
    """Repeated 429s stop at min_requests_per_minute."""
    clock = FakeClock()
    limiter = RateLimiter(RateLimit(requests_per_minute=600, min_requests_per_minute=60), clock)
    for _ in range(20):
        clock.advance(1)
        limiter.on_rate_limited(reserved_at=clock.now)
    assert limiter.rate == pytest.approx(1.0)


def test_rate_climbs_back_after_a_quiet_spell() -> None:
    """Without 429s the rate rises again after the hold, linearly, up to the configured rate."""
    clock = FakeClock()
    limiter = RateLimiter(RateLimit(requests_per_minute=600), clock)
    limiter.on_rate_limited(reserved_at=0.0)
    low = limiter.rate
    feed(limiter, clock, HOLD_AFTER_DECREASE - 0.5, 4.0)
    assert limiter.rate == low  # still holding
    feed(limiter, clock, 20, 4.0)
    assert low < limiter.rate < 10.0
    feed(limiter, clock, 400, 10.0)
    assert limiter.rate == pytest.approx(10.0)


def test_not_adaptive_keeps_the_rate() -> None:
    """adaptive=False ignores 429s."""
    clock = FakeClock()
    limiter = RateLimiter(RateLimit(requests_per_minute=600, adaptive=False), clock)
    limiter.on_rate_limited(reserved_at=0.0)
    assert limiter.rate == pytest.approx(10.0)


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
        assert limiter.rate == pytest.approx(5.0)


async def test_decrease_voids_slots_reserved_at_the_old_rate() -> None:
    """A request that waited for a slot at the old rate re-reserves after a decrease, at the new spacing."""
    clock = FakeClock()
    limiter = RateLimiter(RateLimit(requests_per_minute=600), clock)
    await limiter.acquire()
    waiting = asyncio.create_task(limiter.acquire())  # reserves the 0.1 s slot and sleeps
    await asyncio.sleep(0)
    limiter.on_rate_limited(reserved_at=clock.now)  # 10/s -> 5/s while it sleeps
    reserved_at = await waiting
    assert limiter.epoch == 1
    assert reserved_at == pytest.approx(0.1)  # its second reservation, after the decrease
    assert limiter.reserve() == pytest.approx(0.2)  # the next one follows at the new spacing


async def test_acquire_refuses_a_wait_past_max_wait() -> None:
    """acquire(max_wait=...) raises TimeoutError instead of waiting too long."""
    clock = FakeClock()
    limiter = RateLimiter(RateLimit(requests_per_minute=60), clock)
    await limiter.acquire()
    with pytest.raises(TimeoutError):
        await limiter.acquire(max_wait=0.5)
