"""One schedule, rate and cool-down per Box identity in a real redis-server; this process's own when it fails.

Two `RedisShare` objects on one server stand for two processes. Waits are read from what the
scripts return (Redis's clock), so the bounds below are wide: a script takes well under a
millisecond, and a test allows tens.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as aioredis

from box_sessions import (
    BoxAuth,
    BoxClient,
    CCGAuth,
    DeveloperTokenAuth,
    OAuth2Auth,
    RateLimit,
    RateLimitError,
    SharedStateError,
    SystemClock,
)
from box_sessions._transport._pacing_state import RateRecord, Refusal, Reservation
from box_sessions._transport._ratelimit import RateLimiter
from box_sessions._transport._shared_pacing import RETRY_SHARE, FallbackPacingState
from box_sessions.redis import RedisShare
from box_sessions.redis._pacing import IDLE_TTL
from box_sessions.testing import FakeClock

from .support.redis_server import RedisServer, free_port

#: Seconds between slots in these tests.
INTERVAL = 0.5
#: Slack for the time that passes between two scripts.
SLACK = 0.05


@pytest.fixture
async def shares(redis_server: RedisServer) -> AsyncIterator[tuple[RedisShare, RedisShare]]:
    """Two shares on one server: two processes of one Box app."""
    async with RedisShare(redis_server.url, timeout=2.0) as one, RedisShare(redis_server.url, timeout=2.0) as two:
        yield one, two


async def reserve(share: RedisShare, identity: str = "app", max_wait: float | None = None) -> Reservation:
    reservation = await share.pacing.state(identity).reserve(INTERVAL, burst=1, max_wait=max_wait)
    assert isinstance(reservation, Reservation)
    return reservation


async def test_two_processes_take_slots_of_one_schedule(shares: tuple[RedisShare, RedisShare]) -> None:
    """Slots reserved by two processes in turn are spaced one interval apart, as if one process took them all."""
    one, two = shares
    waits = [(await reserve(share)).wait for share in (one, two, one, two)]
    for index, wait in enumerate(waits):
        assert index * INTERVAL - SLACK <= wait <= index * INTERVAL + SLACK


async def test_identities_have_schedules_of_their_own(shares: tuple[RedisShare, RedisShare]) -> None:
    """Another Box identity's first slot is free at once, whatever the first identity reserved."""
    one, two = shares
    await reserve(one, "app-a")
    await reserve(one, "app-a")
    assert (await reserve(two, "app-b")).wait <= SLACK


async def test_a_refusal_keeps_nothing(shares: tuple[RedisShare, RedisShare]) -> None:
    """A reservation refused for waiting too long leaves the schedule as it was."""
    one, two = shares
    await reserve(one)
    refusal = await two.pacing.state("app").reserve(INTERVAL, burst=1, max_wait=0.1)
    assert isinstance(refusal, Refusal)
    assert INTERVAL - SLACK <= refusal.wait <= INTERVAL + SLACK
    assert INTERVAL - SLACK <= (await reserve(two)).wait <= INTERVAL + SLACK


async def test_a_slot_given_back_at_the_end_is_reserved_again(shares: tuple[RedisShare, RedisShare]) -> None:
    """The last slot given back by one process is the next slot of another."""
    one, two = shares
    await reserve(one)
    last = await reserve(one)
    await one.pacing.state("app").give_back(last)
    assert (await reserve(two)).key == last.key


async def test_a_slot_given_back_in_the_middle_is_reused_once(shares: tuple[RedisShare, RedisShare]) -> None:
    """A slot given back between two others is taken by the next reservation, and not by the one after."""
    one, two = shares
    await reserve(one)
    middle = await reserve(one)
    await reserve(one)
    await one.pacing.state("app").give_back(middle)
    assert (await reserve(two)).key == middle.key
    assert 3 * INTERVAL - SLACK <= (await reserve(two)).wait <= 3 * INTERVAL + SLACK


async def test_a_cancelled_waiter_gives_its_slot_back(shares: tuple[RedisShare, RedisShare]) -> None:
    """A rate limiter's caller cancelled while waiting gives its slot back in Redis: another process takes it."""
    one, two = shares
    await reserve(one)  # the first slot is taken: the waiter's is the second
    limiter = RateLimiter(RateLimit(requests_per_minute=60 / INTERVAL), SystemClock(), one.pacing.state("app"))
    waiter = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0.1)  # it has reserved the second slot and waits for it
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert INTERVAL - 0.1 - SLACK <= (await reserve(two)).wait <= INTERVAL


async def test_a_cooldown_one_process_holds_delays_the_others(shares: tuple[RedisShare, RedisShare]) -> None:
    """A 429's cool-down held by one process delays the next slot of another and is read by it."""
    one, two = shares
    await one.pacing.state("app").hold_cooldown(3.0)
    assert 3.0 - SLACK <= await two.pacing.state("app").cooldown_remaining() <= 3.0
    assert 3.0 - SLACK <= (await reserve(two)).wait <= 3.0


async def test_a_shorter_cooldown_does_not_cut_a_longer_one(shares: tuple[RedisShare, RedisShare]) -> None:
    """A cool-down of 1 s held after one of 3 s leaves the 3 s."""
    one, two = shares
    await one.pacing.state("app").hold_cooldown(3.0)
    await two.pacing.state("app").hold_cooldown(1.0)
    assert await one.pacing.state("app").cooldown_remaining() > 2.0


async def test_a_rate_set_by_one_process_is_read_by_another(shares: tuple[RedisShare, RedisShare]) -> None:
    """The rate record one process stores is what another reads, with a new epoch and no answers counted."""
    one, two = shares
    await two.pacing.state("app").count_accepted()
    assert await one.pacing.state("app").set_rate(RateRecord(rate=4.5, ceiling=5.0, confirmed=1), expected_epoch=0)
    reading = await two.pacing.state("app").get_rate()
    assert reading.record == RateRecord(rate=4.5, ceiling=5.0, confirmed=1, epoch=1)
    assert reading.accepted == 0
    assert 0 <= reading.age <= SLACK


async def test_a_rate_set_from_a_stale_epoch_is_refused(shares: tuple[RedisShare, RedisShare]) -> None:
    """Of two processes lowering the rate from the same epoch, the second is refused and changes nothing."""
    one, two = shares
    assert await one.pacing.state("app").set_rate(RateRecord(rate=4.0), expected_epoch=0)
    assert not await two.pacing.state("app").set_rate(RateRecord(rate=1.0), expected_epoch=0)
    assert (await one.pacing.state("app").get_rate()).record.rate == 4.0


async def test_a_new_rate_restarts_the_schedule(shares: tuple[RedisShare, RedisShare]) -> None:
    """After a change of rate the next slot is free at once: slots reserved at the old rate are void."""
    one, two = shares
    for _ in range(3):
        await reserve(one)
    assert await one.pacing.state("app").set_rate(RateRecord(rate=1.0), expected_epoch=0)
    reservation = await reserve(two)
    assert reservation.wait <= SLACK
    assert reservation.epoch == 1


async def test_accepted_answers_are_counted_for_every_process(shares: tuple[RedisShare, RedisShare]) -> None:
    """Answers counted by two processes add up in the reading."""
    one, two = shares
    for share in (one, two, two):
        await share.pacing.state("app").count_accepted()
    assert (await one.pacing.state("app").get_rate()).accepted == 3


async def test_pacing_keys_expire_when_idle(redis_server: RedisServer, shares: tuple[RedisShare, RedisShare]) -> None:
    """The identity's keys live under the prefix and expire about `IDLE_TTL` after the schedule's last slot."""
    one, _ = shares
    await reserve(one)
    async with aioredis.Redis.from_url(redis_server.url) as raw:
        keys = [key.decode() async for key in raw.scan_iter("*")]
        assert len(keys) == 1
        assert keys[0].startswith("box-sessions:pacing:")
        ttl = await raw.pttl(keys[0]) / 1000
    assert IDLE_TTL <= ttl <= IDLE_TTL + INTERVAL + 1


async def test_an_unreachable_redis_raises_shared_state_error() -> None:
    """A reservation against a port where no Redis listens raises `SharedStateError` at once."""
    async with RedisShare(f"redis://127.0.0.1:{free_port()}/0", timeout=1.0) as share:
        with pytest.raises(SharedStateError, match="reserving a slot"):
            await share.pacing.state("app").reserve(INTERVAL, burst=1, max_wait=None)


async def test_a_redis_that_fails_is_replaced_by_own_pacing_and_taken_back(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis killed: slots come from this process, with one WARNING; Redis back: slots come from it, with one INFO."""
    clock = FakeClock()
    async with RedisShare(redis_server.url, timeout=1.0) as share:
        state = FallbackPacingState(share.pacing.state("app"), clock)
        await state.reserve(INTERVAL, burst=1, max_wait=None)
        assert state.sharing
        redis_server.kill()
        waits = [(await state.reserve(INTERVAL, burst=1, max_wait=None)).wait for _ in range(3)]
        assert waits == [0.0, INTERVAL, 2 * INTERVAL]  # this process's own schedule, on its clock
        assert not state.sharing
        redis_server.start()
        clock.advance(RETRY_SHARE)
        back = await state.reserve(INTERVAL, burst=1, max_wait=None)
        assert state.sharing
        assert back.wait <= SLACK  # a fresh Redis: its schedule starts now
    messages = [(r.levelno, r.getMessage()) for r in caplog.records if "shared pacing" in r.getMessage()]
    assert [level for level, _ in messages] == [logging.WARNING, logging.INFO]


async def test_a_slot_from_own_pacing_is_given_back_there(redis_server: RedisServer) -> None:
    """A slot this process reserved while Redis was down is given back to its own schedule, not to Redis."""
    clock = FakeClock()
    async with RedisShare(redis_server.url, timeout=1.0) as share:
        state = FallbackPacingState(share.pacing.state("app"), clock)
        redis_server.kill()
        await state.reserve(INTERVAL, burst=1, max_wait=None)
        second = await state.reserve(INTERVAL, burst=1, max_wait=None)
        assert isinstance(second, Reservation)
        await state.give_back(second)
        assert (await state.reserve(INTERVAL, burst=1, max_wait=None)).wait == INTERVAL


def test_a_ccg_identity_names_its_subject_and_never_its_secret() -> None:
    """The identity a CCG app paces under holds its token URL, client id and subject, not its secret."""
    auth = CCGAuth(client_id="app-id", client_secret="app-secret", enterprise_id="42")
    identity = auth.shared_identity(httpx.URL("https://api.box.com/oauth2/token"))
    assert identity is not None
    assert "app-id" in identity
    assert "enterprise:42" in identity
    assert "app-secret" not in identity


async def test_while_redis_is_down_rate_and_cooldown_are_this_processs(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """With Redis down the rate record, the answers counted, the cool-down and refusals come from this process."""
    clock = FakeClock()
    async with RedisShare(redis_server.url, timeout=1.0) as share:
        state = FallbackPacingState(share.pacing.state("app"), clock)
        redis_server.kill()
        await state.hold_cooldown(2.0)
        assert await state.cooldown_remaining() == 2.0
        assert await state.set_rate(RateRecord(rate=3.0), expected_epoch=0)
        await state.count_accepted()
        reading = await state.get_rate()
        assert (reading.record.rate, reading.record.epoch, reading.accepted) == (3.0, 1, 1)
        assert await state.reserve(INTERVAL, burst=1, max_wait=1.0) == Refusal(2.0)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "shared pacing" in r.getMessage()]
    assert len(warnings) == 1


async def test_a_slot_from_redis_given_back_after_redis_died_is_dropped(redis_server: RedisServer) -> None:
    """Giving back a Redis slot once Redis is gone raises nothing; this process paces on its own from then."""
    clock = FakeClock()
    async with RedisShare(redis_server.url, timeout=1.0) as share:
        state = FallbackPacingState(share.pacing.state("app"), clock)
        slot = await state.reserve(INTERVAL, burst=1, max_wait=None)
        assert isinstance(slot, Reservation)
        redis_server.kill()
        await state.give_back(slot)
        assert not state.sharing
        assert (await state.reserve(INTERVAL, burst=1, max_wait=None)).wait == 0.0  # its own, empty schedule


async def test_a_reservation_of_another_state_is_not_given_back(shares: tuple[RedisShare, RedisShare]) -> None:
    """A reservation this state did not make changes nothing when given back."""
    one, _ = shares
    state = FallbackPacingState(one.pacing.state("app"), FakeClock())
    first = await state.reserve(INTERVAL, burst=1, max_wait=None)
    assert isinstance(first, Reservation)
    await state.give_back(Reservation(0.0, 0, "not a slot"))
    await one.pacing.state("app").give_back(Reservation(0.0, 0, "not a slot"))
    assert INTERVAL - SLACK <= (await reserve(one)).wait <= INTERVAL + SLACK


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
    from .hostile import Action, Answer, Request, serve, token_answer  # noqa: PLC0415 - only this test needs it

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


def test_identities_name_no_secret() -> None:
    """A developer token is named by a digest, OAuth 2.0 by its store's key; a keyless store names nothing."""
    url = httpx.URL("https://api.box.com/oauth2/token")
    developer = DeveloperTokenAuth("dev-token-shared").shared_identity(url)
    assert developer is not None
    assert "dev-token-shared" not in developer
    assert DeveloperTokenAuth("dev-token-other").shared_identity(url) != developer
    keyless = OAuth2Auth(client_id="cid", client_secret="very-secret", refresh_token="r3fr3sh-1")
    assert keyless.shared_identity(url) is None
