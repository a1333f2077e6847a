"""The 429 cool-down: every request of a client holds off, and one that may not wait it out fails unsent."""

from __future__ import annotations

import asyncio

import pytest

from box_sessions import BoxClient, DeveloperTokenAuth, RateLimitError, RetryPolicy
from box_sessions.testing import FakeClock, LoopbackServer, Reply, Request

from ..conftest import (
    BOUND,
    FAST_RETRY,
    GROUPS_URL,
    USERS_URL,
    HeldClock,
    MakeClient,
    accepted,
    accepted_reply,
    box_error,
    box_error_body,
    json_reply,
    terminate,
)
from ..support.routes import Routes


async def test_shared_cooldown_holds_back_other_requests(routes: Routes, client: BoxClient, clock: FakeClock) -> None:
    """After one request's 429, a request of the same client waits out the cool-down before sending."""
    routes.post(USERS_URL).mock(side_effect=[box_error(429, retry_after="30"), accepted()])
    groups = routes.post(GROUPS_URL).mock(return_value=accepted())
    await terminate(client)
    assert clock.sleeps == [30.0]
    clock.advance(-10)  # pretend the other request starts 10 s into the cool-down
    await client.session_termination.terminate_groups_sessions(group_ids=["9"])
    assert clock.sleeps == [30.0, 10.0]
    assert groups.call_count == 1


async def test_cooldown_is_per_client(routes: Routes, make_client: MakeClient, clock: FakeClock) -> None:
    """Another client is not held back by this client's 429."""
    routes.post(USERS_URL).mock(side_effect=[box_error(429, retry_after="30"), accepted()])
    routes.post(GROUPS_URL).mock(return_value=accepted())
    async with make_client() as a, make_client() as b:
        await terminate(a)
        clock.advance(-10)
        await b.session_termination.terminate_groups_sessions(group_ids=["9"])
    assert clock.sleeps == [30.0]


async def test_cooldown_past_deadline_raises_rate_limit_error(
    routes: Routes, make_client: MakeClient, clock: FakeClock
) -> None:
    """A request that would wait out a cool-down past its deadline raises RateLimitError unsent, with retry_after."""
    routes.post(USERS_URL).mock(side_effect=[box_error(429, retry_after="100"), accepted()])
    groups = routes.post(GROUPS_URL).mock(return_value=accepted())
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
    paths: list[str] = []

    async def handler(request: Request) -> Reply:
        paths.append(request.path)
        if len(paths) == 1:
            limited = json_reply(429, box_error_body(429, "rate_limit_exceeded"))
            return Reply(limited.status, limited.body, {**limited.headers, "retry-after": "0.5"})
        return accepted_reply()

    clock = HeldClock()
    clock.hold()  # time stands still: who waits, and how long, is seen before anyone is sent
    async with (
        LoopbackServer(handler) as server,
        BoxClient(
            DeveloperTokenAuth("dev-token"), base_url=server.url, rate_limit=None, retry=FAST_RETRY, clock=clock
        ) as client,
    ):
        manager = client.session_termination
        limited = asyncio.create_task(terminate(client))
        await clock.until_waiting(1)  # the 429 came back: its request waits out the retry-after
        beside = [asyncio.create_task(manager.terminate_groups_sessions([g])) for g in range(5)]
        await clock.until_waiting(6)  # and every request sent beside it holds off for the cool-down
        assert paths == ["/2.0/users/terminate_sessions"]  # none of them reached the server meanwhile
        assert clock.sleeps == pytest.approx([0.5] * 6)
        clock.release()
        await asyncio.wait_for(asyncio.gather(limited, *beside), BOUND)
    assert len(paths) == 7
    assert paths.count("/2.0/groups/terminate_sessions") == 5


async def test_a_retry_after_past_the_cap_quiets_the_whole_client(
    routes: Routes, make_client: MakeClient, clock: FakeClock
) -> None:
    """Answers of 429 retry-after 200 (cap 120): a 5,000-id job fails every id at once, sending about one wave."""
    ids = [str(1000 + i) for i in range(5000)]
    route = routes.post(USERS_URL).mock(return_value=box_error(429, "rate_limit_exceeded", retry_after="200"))
    async with make_client(retry=RetryPolicy(max_retry_after=120)) as client:
        report = await client.session_termination.terminate(user_ids=ids)
        sent = route.call_count
        assert 1 <= sent <= 16 + 4  # max_concurrency's first wave, and a few more
        assert clock.sleeps == []  # at once: nothing was waited for
        assert sorted(str(failure.value) for failure in report.failed) == sorted(ids)
        assert all(isinstance(failure.error, RateLimitError) for failure in report.failed)
        assert all(failure.error.retry_after is not None for failure in report.failed)  # type: ignore[attr-defined]

        with pytest.raises(RateLimitError) as raised:
            await terminate(client)
        assert route.call_count == sent  # not sent: the client is cooling down
    assert clock.sleeps == []
    assert raised.value.retry_after == pytest.approx(200.0)  # the cool-down left: no time has passed
