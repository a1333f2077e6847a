"""The transport's retries, waits, cool-down, deadline and error mapping (scripted routes, fake clock)."""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging

import pytest

import box_sessions
from box_sessions import (
    BadRequestError,
    BoxClient,
    BoxConnectionError,
    BoxTimeoutError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RetryPolicy,
    ServerError,
)
from box_sessions._shared._pacing import LONGEST_COOLDOWN
from box_sessions.testing import FakeClock

from ..conftest import ACCEPTED, USERS_URL, HeldClock, MakeClient, accepted, box_error, terminate
from ..support.http import httpx
from ..support.routes import Routes


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
async def test_retryable_status_is_retried(routes: Routes, client: BoxClient, status: int) -> None:
    """Retries a retryable status and returns the next answer."""
    route = routes.post(USERS_URL).mock(side_effect=[box_error(status), accepted()])
    msg = await terminate(client)
    assert msg.message == ACCEPTED["message"]
    assert route.call_count == 2


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, box_sessions.BoxAPIError),
        (501, ServerError),
    ],
)
async def test_non_retryable_status_raises_at_once(
    routes: Routes,
    client: BoxClient,
    clock: FakeClock,
    status: int,
    cls: type[Exception],
) -> None:
    """A 400, 403, 404, other 4xx or a 501 is raised after one request, without waiting."""
    route = routes.post(USERS_URL).mock(return_value=box_error(status))
    with pytest.raises(cls):
        await terminate(client)
    assert route.call_count == 1
    assert clock.sleeps == []


async def test_202_with_retry_after_is_success(routes: Routes, client: BoxClient) -> None:
    """A 202 is success even when it carries retry-after: the termination is not sent twice."""
    route = routes.post(USERS_URL).mock(return_value=httpx.Response(202, json=ACCEPTED, headers={"retry-after": "5"}))
    await terminate(client)
    assert route.call_count == 1


async def test_202_with_unreadable_body_is_still_success(routes: Routes, client: BoxClient) -> None:
    """A 202 whose body is not JSON is success with an empty message."""
    routes.post(USERS_URL).mock(return_value=httpx.Response(202, text="ok"))
    assert (await terminate(client)).message == ""


async def test_gives_up_after_max_attempts(routes: Routes, make_client: MakeClient, clock: FakeClock) -> None:
    """After max_attempts the last error is raised, with exponential waits between attempts."""
    route = routes.post(USERS_URL).mock(return_value=box_error(500, "internal_server_error"))
    async with make_client(retry=RetryPolicy(max_attempts=4, initial_backoff=1, jitter=False)) as client:
        with pytest.raises(ServerError) as info:
            await terminate(client)
    assert info.value.code == "internal_server_error"
    assert route.call_count == 4
    assert clock.sleeps == [1.0, 2.0, 4.0]


async def test_max_attempts_one_turns_retries_off(routes: Routes, make_client: MakeClient) -> None:
    """RetryPolicy(max_attempts=1) sends once."""
    route = routes.post(USERS_URL).mock(return_value=box_error(503))
    async with make_client(retry=RetryPolicy(max_attempts=1)) as client:
        with pytest.raises(ServerError):
            await terminate(client)
    assert route.call_count == 1


@pytest.mark.parametrize("header", ["retry-after", "Retry-After", "RETRY-AFTER"])
async def test_429_waits_retry_after_in_any_case(
    routes: Routes, client: BoxClient, clock: FakeClock, header: str
) -> None:
    """A 429's retry-after is honoured whatever the header's case; 30 s waited in no real time."""
    routes.post(USERS_URL).mock(side_effect=[box_error(429, **{header.replace("-", "_"): "30"}), accepted()])
    await terminate(client)
    assert clock.sleeps == [30.0]


async def test_retry_after_http_date_is_honoured(routes: Routes, client: BoxClient, clock: FakeClock) -> None:
    """A retry-after given as an HTTP-date is waited until that date."""
    date = email.utils.formatdate(clock.time() + 12, usegmt=True)
    routes.post(USERS_URL).mock(side_effect=[box_error(429, retry_after=date), accepted()])
    await terminate(client)
    assert clock.sleeps == [12.0]


async def test_fractional_retry_after(routes: Routes, client: BoxClient, clock: FakeClock) -> None:
    """A fractional retry-after is waited exactly."""
    routes.post(USERS_URL).mock(side_effect=[box_error(429, retry_after="0.25"), accepted()])
    await terminate(client)
    assert clock.sleeps == [0.25]


async def test_503_retry_after_is_honoured(routes: Routes, client: BoxClient, clock: FakeClock) -> None:
    """A 503 with retry-after waits that long."""
    routes.post(USERS_URL).mock(side_effect=[box_error(503, retry_after="7"), accepted()])
    await terminate(client)
    assert clock.sleeps == [7.0]


async def test_429_without_retry_after_backs_off(routes: Routes, client: BoxClient, clock: FakeClock) -> None:
    """A 429 with no usable retry-after falls back to the exponential back-off."""
    routes.post(USERS_URL).mock(side_effect=[box_error(429, retry_after="later"), accepted()])
    await terminate(client)
    assert clock.sleeps == [1.0]


@pytest.mark.parametrize(
    ("retry_after", "seconds"),
    [
        pytest.param("3600", 3600.0, id="an-hour"),
        # 1*DIGIT of any length is a valid retry-after; as a float it is infinite (it used to be
        # read as no retry-after, and retried on the back-off).
        pytest.param("1" + "0" * 309, LONGEST_COOLDOWN, id="digits-past-a-float"),
    ],
)
async def test_retry_after_over_the_cap_raises_at_once(
    routes: Routes, make_client: MakeClient, clock: FakeClock, retry_after: str, seconds: float
) -> None:
    """A retry-after longer than max_retry_after raises RateLimitError with .retry_after, unwaited."""
    route = routes.post(USERS_URL).mock(return_value=box_error(429, "rate_limit_exceeded", retry_after=retry_after))
    async with make_client(retry=RetryPolicy(max_retry_after=120)) as client:
        with pytest.raises(RateLimitError) as info:
            await terminate(client)
    assert info.value.retry_after == seconds
    assert route.call_count == 1
    assert clock.sleeps == []


async def test_wait_past_deadline_is_not_begun(routes: Routes, make_client: MakeClient, clock: FakeClock) -> None:
    """A retry-after that would cross total_timeout raises the 429 at once, without waiting."""
    route = routes.post(USERS_URL).mock(return_value=box_error(429, retry_after="60"))
    async with make_client(retry=RetryPolicy(total_timeout=45, jitter=False)) as client:
        with pytest.raises(RateLimitError):
            await terminate(client)
    assert route.call_count == 1
    assert clock.sleeps == []


async def test_deadline_cuts_a_series_of_backoffs(routes: Routes, make_client: MakeClient, clock: FakeClock) -> None:
    """Back-offs stop before the one that would cross the deadline."""
    route = routes.post(USERS_URL).mock(return_value=box_error(502))
    policy = RetryPolicy(max_attempts=10, initial_backoff=1, max_backoff=100, jitter=False, total_timeout=10)
    async with make_client(retry=policy) as client:
        with pytest.raises(ServerError):
            await terminate(client)
    assert clock.sleeps == [1.0, 2.0, 4.0]  # the next (8 s) would end at 15 s > 10 s
    assert route.call_count == 4


async def test_deadline_caps_attempt_timeout(routes: Routes, make_client: MakeClient, clock: FakeClock) -> None:
    """Each attempt's network timeouts are cut to what remains of the deadline."""
    seen: list[dict[str, float]] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return accepted()

    routes.post(USERS_URL).mock(side_effect=record)
    async with make_client(timeout=30.0, retry=RetryPolicy(total_timeout=5)) as client:
        await terminate(client)
    assert seen == [{"connect": 5.0, "read": 5.0, "write": 5.0, "pool": 5.0}]


@pytest.mark.parametrize(
    ("exc", "cls"),
    [
        pytest.param(httpx.ConnectTimeout("slow"), BoxTimeoutError, id="connect-timeout"),
        pytest.param(httpx.ReadTimeout("slow"), BoxTimeoutError, id="read-timeout"),
        pytest.param(httpx.ConnectError("refused"), BoxConnectionError, id="connect-error"),
        pytest.param(httpx.RemoteProtocolError("dropped"), BoxConnectionError, id="dropped"),
    ],
)
async def test_network_errors_are_retried_then_mapped(
    routes: Routes, client: BoxClient, exc: Exception, cls: type[Exception]
) -> None:
    """Timeouts and connection errors are retried, then raised as box_sessions errors chained to httpx's."""
    route = routes.post(USERS_URL).mock(side_effect=exc)
    with pytest.raises(cls) as info:
        await terminate(client)
    assert route.call_count == 5
    assert isinstance(info.value.__cause__, httpx.HTTPError)


async def test_network_error_then_success(routes: Routes, client: BoxClient) -> None:
    """A connection error followed by a 202 succeeds."""
    route = routes.post(USERS_URL).mock(side_effect=[httpx.ConnectError("refused"), accepted()])
    await terminate(client)
    assert route.call_count == 2


async def test_other_httpx_error_is_wrapped_not_retried(routes: Routes, client: BoxClient) -> None:
    """An httpx error that is not a network failure is a BoxError, sent once."""
    route = routes.post(USERS_URL).mock(side_effect=httpx.DecodingError("bad gzip"))
    with pytest.raises(box_sessions.BoxError) as info:
        await terminate(client)
    assert not isinstance(info.value, (BoxConnectionError, BoxTimeoutError))
    assert route.call_count == 1


async def test_cancel_during_backoff_propagates(routes: Routes, make_client: MakeClient) -> None:
    """Cancelling during a back-off wait raises CancelledError and sends nothing more."""
    route = routes.post(USERS_URL).mock(return_value=box_error(429, retry_after="30"))
    clock = HeldClock()
    clock.hold()
    async with make_client(clock=clock) as client:
        task = asyncio.create_task(terminate(client))
        await clock.until_waiting(1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert route.call_count == 1


async def test_cancel_during_request_is_not_retried(routes: Routes, client: BoxClient) -> None:
    """A CancelledError raised while sending is neither wrapped nor retried."""
    sent: list[httpx.Request] = []

    def cancel(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        raise asyncio.CancelledError

    routes.post(USERS_URL).mock(side_effect=cancel)
    with pytest.raises(asyncio.CancelledError):
        await terminate(client)
    assert len(sent) == 1


async def test_each_retry_is_logged_at_info(
    routes: Routes, client: BoxClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Each retry logs method, path, status, attempt and wait, and no token."""
    routes.post(USERS_URL).mock(side_effect=[box_error(429, "rate_limit_exceeded", retry_after="3"), accepted()])
    with caplog.at_level(logging.INFO, logger="box_sessions"):
        await terminate(client)
    messages = [r.getMessage() for r in caplog.records if r.name == "box_sessions"]
    assert messages == [
        (
            "Retrying POST /2.0/users/terminate_sessions after 429 rate_limit_exceeded "
            "(a 429 does not count against the 5 attempts), waiting 3.00 s"
        )
    ]
    assert all("dev-token" not in m for m in messages)


async def test_sends_headers_and_both_lists(routes: Routes, client: BoxClient) -> None:
    """The request carries the bearer token, User-Agent, Accept and both JSON lists."""
    route = routes.post(USERS_URL).mock(return_value=accepted())
    await client.session_termination.terminate_users_sessions(user_ids=[5, "6"])
    request = route.calls.last.request
    assert request.headers["authorization"] == "Bearer dev-token"
    assert request.headers["user-agent"] == f"box-sessions/{box_sessions.__version__}"
    assert request.headers["accept"] == "application/json"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {"user_ids": ["5", "6"], "user_logins": []}
