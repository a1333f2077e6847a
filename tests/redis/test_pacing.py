"""Pacing through a real redis-server: what only Redis does, beyond the contract every state meets.

The contract suite (``tests/pacing``) runs the Redis state through the same cases as this
process's state; here: the keys and their expiry, two round trips per request, a Redis that fails
and comes back, and clients of two processes meeting one cool-down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from box_sessions import (
    BoxAuth,
    BoxClient,
    CCGAuth,
    DeveloperTokenAuth,
    OAuth2Auth,
    PacingAnswer,
    RateLimit,
    RateLimitError,
    RateRecord,
    Refusal,
    Reservation,
    RetryPolicy,
    SharedStateError,
    SystemClock,
)
from box_sessions._pacing import FallbackPacingState, Pacer
from box_sessions._shared import RETRY_SHARE
from box_sessions.redis import RedisShare
from box_sessions.redis._pacing import IDLE_TTL
from box_sessions.testing import FakeBox, FakeClock

from ..support.redis_server import RedisServer, free_port

#: Seconds between slots in these tests.
INTERVAL = 0.5
#: Commands the pacing scripts run inside Redis (counted by ``INFO commandstats``, never sent by a client).
_RUN_BY_SCRIPTS = {
    "time",
    "hmget",
    "hset",
    "hdel",
    "hincrby",
    "zrange",
    "zrem",
    "zadd",
    "zrangebyscore",
    "del",
    "pexpire",
}


@pytest.fixture
async def shares(redis_server: RedisServer) -> AsyncIterator[tuple[RedisShare, RedisShare]]:
    """Two shares on one server: two processes of one Box app."""
    async with RedisShare(redis_server.url, timeout=2.0) as one, RedisShare(redis_server.url, timeout=2.0) as two:
        yield one, two


async def reserve(state: FallbackPacingState) -> Reservation:
    answer = await state.reserve(interval=INTERVAL, burst=1, epoch=None, max_wait=None, max_cooldown=None)
    assert isinstance(answer, Reservation)
    return answer


async def test_identities_have_schedules_of_their_own(shares: tuple[RedisShare, RedisShare]) -> None:
    """Another Box identity's first slot is free at once, whatever the first identity reserved."""
    one, two = shares
    for _ in range(2):
        await one.pacing.state("app-a").reserve(interval=1.0, burst=1, epoch=None, max_wait=None, max_cooldown=None)
    other = await two.pacing.state("app-b").reserve(interval=1.0, burst=1, epoch=None, max_wait=None, max_cooldown=None)
    assert isinstance(other, Reservation)
    assert other.wait == 0.0


async def test_pacing_keys_expire_when_idle(redis_server: RedisServer, shares: tuple[RedisShare, RedisShare]) -> None:
    """The identity's keys live under the prefix and expire about `IDLE_TTL` after the schedule's last slot."""
    one, _ = shares
    await one.pacing.state("app").reserve(interval=INTERVAL, burst=1, epoch=None, max_wait=None, max_cooldown=None)
    async with aioredis.Redis.from_url(redis_server.url) as raw:
        keys = [key.decode() async for key in raw.scan_iter("*")]
        assert len(keys) == 1
        assert keys[0].startswith("box-sessions:pacing:")
        ttl = await raw.pttl(keys[0]) / 1000
    assert IDLE_TTL <= ttl <= IDLE_TTL + INTERVAL + 1


async def test_a_request_costs_two_redis_commands(redis_server: RedisServer) -> None:
    """A paced request against a shared state is one script to reserve and one to record its answer: two commands."""
    fake = FakeBox()
    async with (
        RedisShare(redis_server.url) as share,
        aioredis.Redis.from_url(redis_server.url) as raw,
        fake.client(
            CCGAuth(client_id=fake.client_id, client_secret=fake.client_secret, enterprise_id="1"),
            shared=share,
            rate_limit=RateLimit(requests_per_minute=6000),
        ) as client,
    ):
        await client.session_termination.terminate_users_sessions(user_ids=["1"])  # loads the scripts, the token
        await raw.config_resetstat()
        for user in range(2, 12):
            await client.session_termination.terminate_users_sessions(user_ids=[str(user)])
        stats = await raw.info("commandstats")
    calls = {name.removeprefix("cmdstat_"): value["calls"] for name, value in stats.items()}
    sent = {name: count for name, count in calls.items() if name not in _RUN_BY_SCRIPTS | {"config|resetstat", "info"}}
    assert sent == {"evalsha": 20}  # 10 requests: one reservation and one record each


async def test_an_unreachable_redis_raises_shared_state_error() -> None:
    """A reservation against a port where no Redis listens raises `SharedStateError` at once."""
    async with RedisShare(f"redis://127.0.0.1:{free_port()}/0", timeout=1.0) as share:
        with pytest.raises(SharedStateError, match="reserving a slot"):
            await share.pacing.state("app").reserve(
                interval=INTERVAL, burst=1, epoch=None, max_wait=None, max_cooldown=None
            )


async def test_a_redis_that_fails_is_replaced_by_own_pacing_and_taken_back(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis killed: slots come from this process, with one WARNING; Redis back: slots come from it, with one INFO."""
    clock = FakeClock()
    async with RedisShare(redis_server.url, timeout=1.0) as share:
        state = FallbackPacingState(share.pacing.state("app"), clock)
        await reserve(state)
        assert not state.health.failing
        redis_server.kill()
        waits = [(await reserve(state)).wait for _ in range(3)]
        assert waits == [0.0, INTERVAL, 2 * INTERVAL]  # this process's own schedule, on its clock
        assert state.health.failing
        redis_server.start()
        clock.advance(RETRY_SHARE)
        back = await reserve(state)
        assert not state.health.failing
        assert back.wait == 0.0  # a fresh Redis: its schedule starts now
    messages = [(r.levelno, r.getMessage()) for r in caplog.records if "The share" in r.getMessage()]
    assert [level for level, _ in messages] == [logging.WARNING, logging.INFO]


async def test_a_slot_from_own_pacing_is_given_back_there(redis_server: RedisServer) -> None:
    """A slot this process reserved while Redis was down is given back to its own schedule, not to Redis."""
    clock = FakeClock()
    async with RedisShare(redis_server.url, timeout=1.0) as share:
        state = FallbackPacingState(share.pacing.state("app"), clock)
        redis_server.kill()
        await reserve(state)
        second = await reserve(state)
        await state.give_back(second)
        assert (await reserve(state)).wait == INTERVAL


async def test_while_redis_is_down_rate_and_cooldown_are_this_processs(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """With Redis down the rate record, the answers counted, the cool-down and refusals come from this process."""
    clock = FakeClock()
    async with RedisShare(redis_server.url, timeout=1.0) as share:
        state = FallbackPacingState(share.pacing.state("app"), clock)
        redis_server.kill()
        reading = await state.record(PacingAnswer(status=429, cooldown=2.0, lowered=RateRecord(rate=3.0, epoch=1)))
        assert reading.cooldown == 2.0
        reading = await state.record(PacingAnswer(status=202))
        assert (reading.record.rate, reading.record.epoch, reading.accepted) == (3.0, 1, 1)
        refusal = await state.reserve(interval=INTERVAL, burst=1, epoch=1, max_wait=1.0, max_cooldown=None)
        assert isinstance(refusal, Refusal)
        assert refusal.wait == 2.0
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "The share failed" in r.getMessage()]
    assert len(warnings) == 1


async def test_a_slot_from_redis_given_back_after_redis_died_is_dropped(redis_server: RedisServer) -> None:
    """Giving back a Redis slot once Redis is gone raises nothing; this process paces on its own from then."""
    clock = FakeClock()
    async with RedisShare(redis_server.url, timeout=1.0) as share:
        state = FallbackPacingState(share.pacing.state("app"), clock)
        slot = await reserve(state)
        redis_server.kill()
        await state.give_back(slot)
        assert state.health.failing
        assert (await reserve(state)).wait == 0.0  # its own, empty schedule


async def test_a_reservation_of_another_state_is_not_given_back(shares: tuple[RedisShare, RedisShare]) -> None:
    """A reservation the fallback state did not make changes nothing when given back."""
    one, _ = shares
    state = FallbackPacingState(one.pacing.state("app"), FakeClock())
    first = await reserve(state)
    await state.give_back(Reservation(wait=0.0, reading=first.reading, key="not a slot"))
    second = await reserve(state)
    assert second.wait > 0.0


class _HeldClock(SystemClock):
    """The real clock, whose sleeps never end (until cancelled): a waiter stays at its slot."""

    def __init__(self) -> None:
        self.sleeping = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.sleeping.set()
        await asyncio.Event().wait()


async def test_a_cancelled_waiter_gives_its_slot_back_to_another_process(shares: tuple[RedisShare, RedisShare]) -> None:
    """A request cancelled while waiting for its Redis slot frees it: another process's next slot is that one."""
    one, two = shares
    state = one.pacing.state("app")
    first = await state.reserve(interval=1.0, burst=1, epoch=None, max_wait=None, max_cooldown=None)
    assert isinstance(first, Reservation)
    clock = _HeldClock()
    paced = Pacer(state, RateLimit(requests_per_minute=60), clock)
    waiter = asyncio.create_task(paced.reserve(deadline=None, max_cooldown=120))
    await clock.sleeping.wait()  # it has reserved the second slot and waits for it
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    other = await two.pacing.state("app").reserve(interval=1.0, burst=1, epoch=None, max_wait=None, max_cooldown=None)
    assert isinstance(other, Reservation)
    assert isinstance(other.key, tuple)
    assert isinstance(first.key, tuple)
    assert other.key[1] - first.key[1] == 1_000_000  # the second slot, one second after the first


def _auth_for(kind: str, share: RedisShare) -> BoxAuth:
    if kind == "ccg":
        return CCGAuth(client_id="cid", client_secret="very-secret", enterprise_id="42")
    if kind == "developer":
        return DeveloperTokenAuth("dev-token-shared")
    return OAuth2Auth(
        client_id="cid",
        client_secret="very-secret",
        refresh_token="r3fr3sh-1",
        token_store=share.token_store("user-42"),
    )


@pytest.mark.parametrize("kind", ["ccg", "developer", "oauth2"])
async def test_a_long_cooldown_seen_by_one_process_fails_calls_of_another_at_once(
    kind: str, shares: tuple[RedisShare, RedisShare]
) -> None:
    """A 429 retry-after 200 (cap 120) in one process: a call in another fails at once, unsent (RateLimitError)."""
    from ..support.hostile import Action, Answer, Request, serve, token_answer  # noqa: PLC0415 - only this test needs it

    answers = {"api": 0}

    def handler(request: Request) -> Action:
        if request.path.endswith("/oauth2/token"):
            return token_answer("acc3ss-shared", refresh_token="r3fr3sh-2")
        answers["api"] += 1
        return Answer(429, b'{"type": "error", "status": 429, "code": "rate_limit_exceeded"}', {"retry-after": "200"})

    one, two = shares
    with serve(handler) as server:
        async with (
            BoxClient(_auth_for(kind, one), base_url=server.url, shared=one) as first,
            BoxClient(_auth_for(kind, two), base_url=server.url, shared=two) as second,
        ):
            with pytest.raises(RateLimitError):
                await first.session_termination.terminate_users_sessions(user_ids=["1"])
            sent = answers["api"]
            with pytest.raises(RateLimitError) as raised:
                await asyncio.wait_for(second.session_termination.terminate_users_sessions(user_ids=["2"]), 5)
    assert answers["api"] == sent == 1
    assert raised.value.retry_after is not None
    assert 190 <= raised.value.retry_after <= 200


async def test_a_429_without_retry_after_holds_the_other_processes_too(shares: tuple[RedisShare, RedisShare]) -> None:
    """A 429 with no retry-after in one process starts the shared cool-down (its back-off): another waits it out."""
    from ..support.hostile import Action, Answer, Request, serve  # noqa: PLC0415 - only this test needs it

    answers: list[int] = []

    def handler(request: Request) -> Action:
        answers.append(429 if not answers else 202)
        body = b'{"type": "error", "status": 429}' if answers[-1] == 429 else b"{}"
        return Answer(answers[-1], body, {})

    one, two = shares
    clock_one, clock_two = FakeClock(), FakeClock()
    # No retries, and a fixed back-off of 30 s: a 429 without retry-after cools everyone down for 30 s.
    policy = RetryPolicy(max_attempts=1, initial_backoff=30.0, max_backoff=30.0, jitter=False)
    with serve(handler) as server:
        async with (
            BoxClient(
                _auth_for("developer", one),
                base_url=server.url,
                shared=one,
                clock=clock_one,
                retry=policy,
                rate_limit=RateLimit(requests_per_minute=6000),
            ) as first,
            BoxClient(
                _auth_for("developer", two),
                base_url=server.url,
                shared=two,
                clock=clock_two,
                retry=policy,
                rate_limit=RateLimit(requests_per_minute=6000),
            ) as second,
        ):
            with pytest.raises(RateLimitError):
                await first.session_termination.terminate_users_sessions(user_ids=["1"])
            await second.session_termination.terminate_users_sessions(user_ids=["2"])
    assert answers == [429, 202]
    assert clock_two.sleeps
    assert 25 < clock_two.sleeps[0] <= 30
