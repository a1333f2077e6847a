"""A 429 says "later", not "no": it does not spend the attempts meant for errors, and no id fails on it."""

from __future__ import annotations

import pytest

from box_sessions import BoxTimeoutError, RateLimitError, RetryPolicy, ServerError

from ..conftest import USERS_URL, MakeClient, accepted, box_error
from ..support.http import httpx
from ..support.routes import Routes


def rate_limited() -> httpx.Response:
    return box_error(429, "rate_limit_exceeded", retry_after="1")


async def test_more_429s_than_max_attempts_still_succeed(routes: Routes, make_client: MakeClient) -> None:
    """Six 429s in a row with max_attempts=3, then a 202: the call succeeds on its seventh request."""
    route = routes.post(USERS_URL).mock(side_effect=[rate_limited() for _ in range(6)] + [accepted()])
    async with make_client(retry=RetryPolicy(max_attempts=3, jitter=False)) as client:
        await client.session_termination.terminate_users_sessions(user_ids=["1"])
    assert route.call_count == 7


async def test_errors_between_429s_still_count(routes: Routes, make_client: MakeClient) -> None:
    """429s and 503s in turn with max_attempts=3: the third 503 ends the call."""
    route = routes.post(USERS_URL).mock(side_effect=[rate_limited(), box_error(503)] * 4)
    async with make_client(retry=RetryPolicy(max_attempts=3, jitter=False)) as client:
        with pytest.raises(ServerError):
            await client.session_termination.terminate_users_sessions(user_ids=["1"])
    assert route.call_count == 6


async def test_429s_are_bounded_by_the_deadline(routes: Routes, make_client: MakeClient) -> None:
    """Endless 429s end at the call's deadline, not sooner and not never."""
    route = routes.post(USERS_URL).mock(side_effect=lambda _request: rate_limited())
    async with make_client(retry=RetryPolicy(total_timeout=10.5, jitter=False)) as client:
        with pytest.raises((RateLimitError, BoxTimeoutError)):
            await client.session_termination.terminate_users_sessions(user_ids=["1"])
    assert route.call_count == 11  # sent at 0, 1, ..., 10 s; the wait to 11 s would cross the deadline


async def test_one_attempt_retries_no_429(routes: Routes, make_client: MakeClient) -> None:
    """max_attempts=1 turns retries off, those of 429s too."""
    route = routes.post(USERS_URL).mock(side_effect=[rate_limited(), accepted()])
    async with make_client(retry=RetryPolicy(max_attempts=1)) as client:
        with pytest.raises(RateLimitError):
            await client.session_termination.terminate_users_sessions(user_ids=["1"])
    assert route.call_count == 1


async def test_no_id_of_a_bulk_job_fails_on_429s(routes: Routes, make_client: MakeClient) -> None:
    """A batch that meets more 429s in a row than max_attempts is still terminated: the report is ok."""
    answers = iter([rate_limited() for _ in range(7)])
    routes.post(USERS_URL).mock(side_effect=lambda _request: next(answers, accepted()))
    async with make_client(retry=RetryPolicy(max_attempts=5, jitter=False)) as client:
        report = await client.session_termination.terminate(user_ids=range(1, 301), max_concurrency=1)
    assert report.ok, str(report)
    assert report.failed == []
    assert report.rate_limited == 7
