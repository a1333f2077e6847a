"""How a request meets pacing: waiting for its slot, giving it back, refusals it may not wait for, and the client.

The state's own behaviour is the contract suite's; here the client's pacer over it, on a fake clock.
"""

from __future__ import annotations

import asyncio

import pytest

import box_sessions
from box_sessions import BoxClient, BoxTimeoutError, DeveloperTokenAuth, InMemoryPacingState, RateLimit, Reservation
from box_sessions._pacing import Pacer, PacingRefused
from box_sessions.testing import FakeBox, FakeClock

from ..conftest import USERS_URL, HeldClock, MakeClient, accepted, box_error, terminate, until
from ..support.routes import Routes


def pacer(clock: FakeClock, per_minute: float = 60) -> Pacer:
    return Pacer(InMemoryPacingState(clock), RateLimit(requests_per_minute=per_minute), clock)


async def test_a_burst_of_refusals_then_one_quiet_interval_sends_at_once() -> None:
    """30 requests at 60 a minute with 2 s to spare: 3 get slots, 27 are refused, and after the 3 slots
    and one interval of quiet the next request goes at once (it used to wait 27 s more, and grow)."""
    clock = FakeClock()
    paced = pacer(clock)
    outcomes = [
        await paced.state.reserve(interval=1.0, burst=1, epoch=0, max_wait=2.0, max_cooldown=None) for _ in range(30)
    ]
    assert sum(isinstance(o, Reservation) for o in outcomes) == 3
    clock.advance(3 + 1)
    await paced.reserve(deadline=clock.now + 2.0, max_cooldown=120)
    assert clock.sleeps == []


async def test_a_cancelled_waiter_gives_its_slot_back() -> None:
    """A request cancelled while it waits for its slot frees it: the next request need not wait for it."""
    clock = HeldClock()
    paced = pacer(clock)
    await paced.reserve(deadline=None, max_cooldown=120)
    clock.hold()
    waiter = asyncio.create_task(paced.reserve(deadline=None, max_cooldown=120))  # its slot is 1 s ahead
    await clock.until_waiting(1)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    slot = await paced.state.reserve(interval=1.0, burst=1, epoch=None, max_wait=None, max_cooldown=None)
    assert isinstance(slot, Reservation)
    assert slot.wait == 1.0  # the waiter's slot, given back: the one after the first


async def test_slots_of_calls_cancelled_while_waiting_are_given_back() -> None:
    """After 30 callers are cancelled waiting for the limiter, one quiet interval lets the next call out at once."""
    fake, clock = FakeBox(), HeldClock()
    policy = box_sessions.RetryPolicy(total_timeout=60)
    async with fake.client(retry=policy, clock=clock, rate_limit=RateLimit(requests_per_minute=60)) as client:
        await terminate(client)  # the free slot; the next ones are a second apart
        clock.hold()
        waiting = [asyncio.create_task(terminate(client, str(user))) for user in range(2, 32)]
        await clock.until_waiting(30)  # each holds a slot, 1 to 30 s ahead, and waits for it
        for task in waiting:
            task.cancel()
        outcomes = await asyncio.gather(*waiting, return_exceptions=True)
        assert all(isinstance(outcome, asyncio.CancelledError) for outcome in outcomes)
        assert fake.terminated_count == 1
        clock.release()
        clock.advance(1.0)  # one interval of quiet
        waited = len(clock.sleeps)
        await terminate(client, "99")
        assert clock.sleeps[waited:] == []  # sent at once: the cancelled callers kept no slot
    assert fake.terminated_count == 2


async def test_a_slot_past_the_deadline_is_refused_unsent() -> None:
    """A slot further away than the call's deadline fails the request at once with BoxTimeoutError, nothing waited."""
    clock = FakeClock()
    paced = pacer(clock)
    await paced.reserve(deadline=None, max_cooldown=120)
    with pytest.raises(PacingRefused) as refused:
        await paced.reserve(deadline=clock.now + 0.5, max_cooldown=120)
    assert isinstance(refused.value.error, BoxTimeoutError)
    assert "1.0 s, longer than the 0.5 s left" in str(refused.value.error)
    assert clock.sleeps == []


async def test_a_cool_down_longer_than_max_retry_after_is_refused_unsent() -> None:
    """A cool-down of 200 s with max_retry_after 120 fails the request at once with RateLimitError carrying the wait."""
    clock = FakeClock()
    paced = pacer(clock)
    slot = await paced.reserve(deadline=None, max_cooldown=120)
    await paced.record(slot, 429, cooldown=200.0)
    with pytest.raises(PacingRefused) as refused:
        await paced.reserve(deadline=None, max_cooldown=120)
    error = refused.value.error
    assert isinstance(error, box_sessions.RateLimitError)
    assert error.retry_after == pytest.approx(200.0)
    assert "longer than max_retry_after (120 s)" in str(error)
    assert clock.sleeps == []


async def test_no_slot_starts_inside_the_cool_down() -> None:
    """A 429's retry-after holds the schedule: the next request waits for its end."""
    clock = FakeClock()
    paced = pacer(clock, per_minute=600)
    slot = await paced.reserve(deadline=None, max_cooldown=120)
    await paced.record(slot, 429, cooldown=3.0)
    await paced.reserve(deadline=None, max_cooldown=120)
    assert clock.sleeps == pytest.approx([3.0])


async def test_a_cool_down_begun_while_waiting_makes_the_slot_wait_again() -> None:
    """A request whose slot is reached while another's 429 started a cool-down waits for the cool-down's end."""
    clock = FakeClock()
    paced = pacer(clock, per_minute=600)
    first = await paced.reserve(deadline=None, max_cooldown=120)
    waiting = asyncio.create_task(paced.reserve(deadline=None, max_cooldown=120))
    await until(lambda: len(clock.sleeps) == 1)  # it reserved the 0.1 s slot and sleeps
    await paced.record(first, 429, cooldown=2.0)
    await waiting
    assert clock.sleeps == pytest.approx([0.1, 2.0])  # the 429 came at 0.1 s: the cool-down ends at 2.1 s


async def test_unpaced_requests_still_wait_out_the_cool_down() -> None:
    """Without a rate limit (rate_limit=None) requests go at once, except inside a 429's cool-down."""
    clock = FakeClock()
    paced = Pacer(InMemoryPacingState(clock), None, clock)
    assert [await paced.reserve(deadline=None, max_cooldown=120) for _ in range(3)] == [None, None, None]
    await paced.record(None, 429, cooldown=2.0)
    await paced.reserve(deadline=None, max_cooldown=120)
    assert clock.sleeps == pytest.approx([2.0])
    assert paced.rate is None


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


async def test_client_requests_are_paced(routes: Routes, make_client: MakeClient, clock: FakeClock) -> None:
    """Every request of a client goes through the limiter: 3 calls at 60/min wait 1 s each after the first."""
    routes.post(USERS_URL).mock(return_value=accepted())
    async with make_client(rate_limit=RateLimit(requests_per_minute=60)) as client:
        for _ in range(3):
            await client.session_termination.terminate_users_sessions(user_ids=["1"])
    assert clock.sleeps == pytest.approx([1.0, 1.0])


async def test_429_through_client_lowers_the_rate(routes: Routes, make_client: MakeClient) -> None:
    """A 429 answered to a client's request slows the client's pacing."""
    routes.post(USERS_URL).mock(side_effect=[box_error(429, retry_after="1"), accepted()])
    async with make_client(rate_limit=RateLimit(requests_per_minute=600)) as client:
        await client.session_termination.terminate_users_sessions(user_ids=["1"])
        paced = client._sender.pacer
        assert paced.decreases == 1
        assert (paced.rate or 0) < 10.0


async def test_after_a_burst_of_refused_calls_the_next_call_goes_at_once() -> None:
    """30 calls at 120 a minute with 1.2 s each: 3 are sent, 27 refused at once; one interval later a call
    is sent without waiting (a refused call used to keep its slot, forever pushing the schedule out)."""
    fake, clock = FakeBox(), FakeClock()
    policy = box_sessions.RetryPolicy(total_timeout=1.2, max_attempts=1)
    async with fake.client(retry=policy, clock=clock, rate_limit=RateLimit(requests_per_minute=120)) as client:
        manager = client.session_termination
        outcomes = await asyncio.gather(
            *(manager.terminate_users_sessions(user_ids=[str(i)]) for i in range(1, 31)), return_exceptions=True
        )
        refused = [o for o in outcomes if isinstance(o, BoxTimeoutError)]
        assert (len(outcomes) - len(refused), len(refused)) == (3, 27)
        clock.advance(1.5)  # past the three slots, and one interval of quiet
        waited = len(clock.sleeps)
        await manager.terminate_users_sessions(user_ids=["31"])
        assert clock.sleeps[waited:] == []
    assert fake.terminated_count == 4
