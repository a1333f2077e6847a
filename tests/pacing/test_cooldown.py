"""The 429 cool-down: every request of a client holds off, and one that may not wait it out fails unsent."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
import respx

from box_sessions import (
    BoxClient,
    BoxTimeoutError,
    DeveloperTokenAuth,
    RateLimit,
    RateLimitError,
    RetryPolicy,
    SessionTerminationMessage,
)
from box_sessions.testing import FakeClock, LoopbackServer, Reply, Request

from ..conftest import FAST_RETRY, GROUPS_URL, USERS_URL, MakeClient, accepted, accepted_reply, box_error, terminate
from ..support import hostile

USERS = "/2.0/users/terminate_sessions"
PER_MINUTE = 60  # one slot a second
INTERVAL = 60 / PER_MINUTE
BURST = 30
QUIET = INTERVAL * 1.1  # one interval of quiet, and a little more for a loaded machine
AT_ONCE = 0.5  # a call sent "at once" leaves within this many seconds


def answer_at_once(request: hostile.Request) -> hostile.Action:
    return hostile.accepted()


async def test_slots_of_calls_refused_for_their_deadline_are_given_back() -> None:
    """After a burst mostly refused for its deadline, one quiet interval lets the next call out at once."""
    with hostile.serve(answer_at_once) as server:
        async with BoxClient(
            DeveloperTokenAuth("dev-token"),
            base_url=server.url,
            rate_limit=RateLimit(requests_per_minute=PER_MINUTE),
            retry=RetryPolicy(total_timeout=2),
        ) as client:
            outcomes = await asyncio.wait_for(
                asyncio.gather(*(terminate(client, str(i)) for i in range(BURST)), return_exceptions=True), 10
            )
            refused = sum(isinstance(outcome, BoxTimeoutError) for outcome in outcomes)
            assert refused >= BURST - 3
            assert server.count(USERS) == BURST - refused
            await asyncio.sleep(QUIET)
            started = time.monotonic()
            message = await asyncio.wait_for(terminate(client), 5)
            elapsed = time.monotonic() - started
    assert isinstance(message, SessionTerminationMessage)
    assert elapsed < AT_ONCE


async def test_slots_of_calls_cancelled_while_waiting_are_given_back() -> None:
    """After 30 callers are cancelled waiting for the limiter, one quiet interval lets the next call out at once."""
    with hostile.serve(answer_at_once) as server:
        async with BoxClient(
            DeveloperTokenAuth("dev-token"),
            base_url=server.url,
            rate_limit=RateLimit(requests_per_minute=PER_MINUTE),
            retry=RetryPolicy(total_timeout=60),
        ) as client:
            first = asyncio.ensure_future(terminate(client))
            await asyncio.sleep(0.05)  # the first call takes the free slot
            waiting = [asyncio.ensure_future(terminate(client, str(i))) for i in range(2, BURST + 2)]
            await asyncio.sleep(0.3)
            assert not any(task.done() for task in waiting)
            for task in waiting:
                task.cancel()
            outcomes = await asyncio.gather(*waiting, return_exceptions=True)
            assert all(isinstance(outcome, asyncio.CancelledError) for outcome in outcomes)
            await first
            assert server.count(USERS) == 1
            await asyncio.sleep(QUIET)
            started = time.monotonic()
            with contextlib.suppress(asyncio.TimeoutError):  # held for the cancelled ones' slots: elapsed says so
                await asyncio.wait_for(terminate(client), 2 + AT_ONCE)
            elapsed = time.monotonic() - started
        sent = server.count(USERS)
    assert elapsed < AT_ONCE
    assert sent == 2


def rate_limited(request: hostile.Request) -> hostile.Action:
    return hostile.Answer(
        429, b'{"type": "error", "status": 429, "code": "rate_limit_exceeded"}', {"retry-after": "200"}
    )


async def test_a_retry_after_past_the_cap_quiets_the_whole_client() -> None:
    """Answers of 429 retry-after 200 (cap 120): a 5,000-id job fails every id at once, sending about one wave."""
    ids = [str(1000 + i) for i in range(5000)]
    with hostile.serve(rate_limited) as server:
        async with BoxClient(
            DeveloperTokenAuth("dev-token"),
            base_url=server.url,
            rate_limit=None,
            retry=RetryPolicy(max_retry_after=120),
        ) as client:
            started = time.monotonic()
            report = await asyncio.wait_for(client.session_termination.terminate(user_ids=ids), 10)
            elapsed = time.monotonic() - started
            sent = server.count(USERS)
            assert sent <= 16 + 4  # max_concurrency's first wave, and a few more
            assert elapsed < 1.0
            assert sorted(str(failure.value) for failure in report.failed) == sorted(ids)
            assert all(isinstance(failure.error, RateLimitError) for failure in report.failed)
            assert all(failure.error.retry_after is not None for failure in report.failed)  # type: ignore[attr-defined]

            started = time.monotonic()
            with pytest.raises(RateLimitError) as raised:
                await asyncio.wait_for(terminate(client), 5)
            elapsed = time.monotonic() - started
            assert server.count(USERS) == sent  # not sent: the client is cooling down
    assert elapsed < 0.2
    assert raised.value.retry_after is not None
    assert 190 <= raised.value.retry_after <= 200


async def test_shared_cooldown_holds_back_other_requests(
    respx_mock: respx.MockRouter, client: BoxClient, clock: FakeClock
) -> None:
    """After one request's 429, a request of the same client waits out the cool-down before sending."""
    respx_mock.post(USERS_URL).mock(side_effect=[box_error(429, retry_after="30"), accepted()])
    groups = respx_mock.post(GROUPS_URL).mock(return_value=accepted())
    await terminate(client)
    assert clock.sleeps == [30.0]
    clock.advance(-10)  # pretend the other request starts 10 s into the cool-down
    await client.session_termination.terminate_groups_sessions(group_ids=["9"])
    assert clock.sleeps == [30.0, 10.0]
    assert groups.call_count == 1


async def test_cooldown_is_per_client(respx_mock: respx.MockRouter, make_client: MakeClient, clock: FakeClock) -> None:
    """Another client is not held back by this client's 429."""
    respx_mock.post(USERS_URL).mock(side_effect=[box_error(429, retry_after="30"), accepted()])
    respx_mock.post(GROUPS_URL).mock(return_value=accepted())
    async with make_client() as a, make_client() as b:
        await terminate(a)
        clock.advance(-10)
        await b.session_termination.terminate_groups_sessions(group_ids=["9"])
    assert clock.sleeps == [30.0]


async def test_cooldown_past_deadline_raises_rate_limit_error(
    respx_mock: respx.MockRouter, make_client: MakeClient, clock: FakeClock
) -> None:
    """A request that would wait out a cool-down past its deadline raises RateLimitError unsent, with retry_after."""
    respx_mock.post(USERS_URL).mock(side_effect=[box_error(429, retry_after="100"), accepted()])
    groups = respx_mock.post(GROUPS_URL).mock(return_value=accepted())
    async with make_client(retry=RetryPolicy(total_timeout=200)) as a:
        await terminate(a)
        clock.advance(-100)
        a._sender.retry = RetryPolicy(total_timeout=50)
        with pytest.raises(RateLimitError, match=r"hold off for 100\.0 s more.*deadline; not sent") as caught:
            await a.session_termination.terminate_groups_sessions(group_ids=["9"])
    assert caught.value.retry_after == pytest.approx(100.0)
    assert groups.call_count == 0


async def test_429_cooldown_delays_requests_sent_beside_it() -> None:
    """After one request's 429 with retry-after, the client's other requests reach the server only after it."""
    arrivals: list[tuple[float, str]] = []
    first = True
    answered_429_at = 0.0

    async def handler(request: Request) -> Reply:
        nonlocal first, answered_429_at
        arrivals.append((time.monotonic(), request.path))
        if first:
            first = False
            answered_429_at = time.monotonic()
            return Reply(
                429,
                b'{"type":"error","status":429,"code":"rate_limit_exceeded"}',
                {"retry-after": "0.5"},
            )
        return accepted_reply()

    async with (
        LoopbackServer(handler) as server,
        BoxClient(DeveloperTokenAuth("dev-token"), base_url=server.url, rate_limit=None, retry=FAST_RETRY) as client,
    ):
        manager = client.session_termination
        limited = asyncio.create_task(manager.terminate_users_sessions(user_ids=["1"]))
        while client._sender.pacer.cooldown == 0:  # noqa: ASYNC110 - no event to wait on
            await asyncio.sleep(0.005)
        beside = [asyncio.create_task(manager.terminate_groups_sessions([g])) for g in range(5)]
        await asyncio.gather(limited, *beside)
    assert len(arrivals) == 7
    later = arrivals[1:]
    # Lower bounds only: every other request waited out the 0.5 s cool-down (never earlier).
    assert all(at >= answered_429_at + 0.45 for at, _ in later)
    assert sum(1 for _, path in later if path == "/2.0/groups/terminate_sessions") == 5
