"""Token fetching, caching, refresh ahead of expiry and after a 401, single-flight."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from box_sessions import (
    AuthenticationError,
    BoxClient,
    BoxTimeoutError,
    CCGAuth,
    DeveloperTokenAuth,
    RetryPolicy,
    ServerError,
)
from box_sessions.testing import FakeClock

from ..conftest import (
    TOKEN_URL,
    USERS_URL,
    MakeClient,
    accepted,
    box_error,
    form_of,
    tasks_in,
    terminate,
    token_answer,
    until,
)
from ..support.http import httpx
from ..support.routes import Routes


async def test_ccg_fetches_token_before_first_use(routes: Routes, make_client: MakeClient, ccg: CCGAuth) -> None:
    """CCG posts Box's form to /oauth2/token and uses the token as bearer."""
    token = routes.post(TOKEN_URL).mock(return_value=token_answer("tok-A"))
    api = routes.post(USERS_URL).mock(return_value=accepted())
    async with make_client(ccg) as client:
        await terminate(client)
    assert form_of(token.calls.last.request) == {
        "grant_type": "client_credentials",
        "client_id": "cid",
        "client_secret": "very-secret",
        "box_subject_type": "enterprise",
        "box_subject_id": "42",
    }
    assert token.calls.last.request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert "authorization" not in token.calls.last.request.headers
    assert api.calls.last.request.headers["authorization"] == "Bearer tok-A"


async def test_ccg_user_subject(routes: Routes, make_client: MakeClient) -> None:
    """CCGAuth(user_id=...) asks for a user token."""
    token = routes.post(TOKEN_URL).mock(return_value=token_answer())
    routes.post(USERS_URL).mock(return_value=accepted())
    async with make_client(CCGAuth(client_id="c", client_secret="s", user_id=7)) as client:
        await terminate(client)
    form = form_of(token.calls.last.request)
    assert (form["box_subject_type"], form["box_subject_id"]) == ("user", "7")


async def test_custom_token_url(routes: Routes, make_client: MakeClient) -> None:
    """CCGAuth(token_url=...) fetches tokens there instead of {base_url}/oauth2/token."""
    token = routes.post("https://auth.example.com/token").mock(return_value=token_answer())
    routes.post(USERS_URL).mock(return_value=accepted())
    auth = CCGAuth(
        client_id="c",
        client_secret="s",
        enterprise_id="1",
        token_url="https://auth.example.com/token",
    )
    async with make_client(auth) as client:
        await terminate(client)
    assert token.call_count == 1


async def test_token_is_cached(routes: Routes, make_client: MakeClient, ccg: CCGAuth) -> None:
    """Many calls within the token's life make one token request."""
    token = routes.post(TOKEN_URL).mock(return_value=token_answer())
    routes.post(USERS_URL).mock(return_value=accepted())
    async with make_client(ccg) as client:
        for _ in range(5):
            await terminate(client)
    assert token.call_count == 1


async def test_token_refreshed_ahead_of_expiry(
    routes: Routes, make_client: MakeClient, ccg: CCGAuth, clock: FakeClock
) -> None:
    """A token is replaced 60 s before expires_in runs out, not after a 401."""
    token = routes.post(TOKEN_URL).mock(side_effect=[token_answer("old", 3992), token_answer("new", 3992)])
    api = routes.post(USERS_URL).mock(return_value=accepted())
    async with make_client(ccg) as client:
        await terminate(client)
        clock.advance(3992 - 61)
        await terminate(client)
        assert api.calls.last.request.headers["authorization"] == "Bearer old"
        clock.advance(2)
        await terminate(client)
        assert api.calls.last.request.headers["authorization"] == "Bearer new"
    assert token.call_count == 2


async def test_short_lived_token_refreshes_at_half_life(
    routes: Routes, make_client: MakeClient, ccg: CCGAuth, clock: FakeClock
) -> None:
    """A token living 4 s is refreshed after 2 s (the margin is capped at half the lifetime)."""
    token = routes.post(TOKEN_URL).mock(side_effect=[token_answer("a", 4), token_answer("b", 4)])
    routes.post(USERS_URL).mock(return_value=accepted())
    async with make_client(ccg) as client:
        await terminate(client)
        clock.advance(1.9)
        await terminate(client)
        assert token.call_count == 1
        clock.advance(0.2)
        await terminate(client)
    assert token.call_count == 2


async def test_concurrent_first_use_makes_one_token_request(
    routes: Routes, make_client: MakeClient, ccg: CCGAuth
) -> None:
    """100 concurrent calls needing a token cause exactly one token request."""
    answer = asyncio.Event()

    async def held_token(request: httpx.Request) -> httpx.Response:
        await answer.wait()
        return token_answer()

    token = routes.post(TOKEN_URL).mock(side_effect=held_token)
    api = routes.post(USERS_URL).mock(return_value=accepted())
    async with make_client(ccg) as client:
        calls = [asyncio.create_task(terminate(client)) for _ in range(100)]
        await until(lambda: tasks_in("get_token") == len(calls))  # all wait for a token at once
        answer.set()
        await asyncio.gather(*calls)
    assert token.call_count == 1
    assert api.call_count == 100


async def test_concurrent_401s_refresh_once(routes: Routes, make_client: MakeClient, ccg: CCGAuth) -> None:
    """N concurrent calls all answered 401 once: exactly one refresh, all N succeed."""
    n = 50
    token = routes.post(TOKEN_URL).mock(side_effect=[token_answer("t1"), token_answer("t2"), token_answer("t3")])
    revoked = False
    refused: list[str] = []
    all_in = asyncio.Event()

    async def api(request: httpx.Request) -> httpx.Response:
        if request.headers["authorization"] == "Bearer t1" and revoked:
            refused.append(request.headers["authorization"])
            if len(refused) == n:
                all_in.set()
            await all_in.wait()  # every call has sent t1 before any is answered
            return box_error(401, "unauthorized", "expired")
        return accepted()

    api_route = routes.post(USERS_URL).mock(side_effect=api)
    async with make_client(ccg) as client:
        await terminate(client)  # t1 is fetched and cached
        revoked = True  # Box revokes t1: the next n concurrent calls all get a 401
        await asyncio.gather(*(terminate(client) for _ in range(n)))
    assert token.call_count == 2  # t1 and exactly one refresh
    assert len(refused) == n
    assert api_route.call_count == 1 + 2 * n
    bearers = [c.request.headers["authorization"] for c in api_route.calls]
    assert bearers.count("Bearer t2") == n


async def test_401_after_fresh_token_raises(routes: Routes, make_client: MakeClient, ccg: CCGAuth) -> None:
    """A 401 right after a freshly issued token raises AuthenticationError instead of looping."""
    token = routes.post(TOKEN_URL).mock(return_value=token_answer())
    api = routes.post(USERS_URL).mock(return_value=box_error(401, "unauthorized", "nope"))
    async with make_client(ccg) as client:
        with pytest.raises(AuthenticationError, match="freshly issued"):
            await terminate(client)
    assert (token.call_count, api.call_count) == (1, 1)


async def test_401_with_cached_token_refreshes_once_then_raises(
    routes: Routes, make_client: MakeClient, ccg: CCGAuth
) -> None:
    """A cached token refused gets one refresh; the new one refused too raises."""
    token = routes.post(TOKEN_URL).mock(side_effect=[token_answer("a"), token_answer("b")])
    api = routes.post(USERS_URL).mock(side_effect=[accepted(), box_error(401), box_error(401)])
    async with make_client(ccg) as client:
        await terminate(client)
        with pytest.raises(AuthenticationError):
            await terminate(client)
    assert (token.call_count, api.call_count) == (2, 3)


async def test_developer_token_401_says_it_expired(routes: Routes, client: BoxClient) -> None:
    """A developer token cannot refresh: its 401 says it expired or was revoked."""
    api = routes.post(USERS_URL).mock(
        return_value=box_error(401, "invalid_token", "The access token provided is invalid.")
    )
    with pytest.raises(AuthenticationError, match="expired or was revoked") as info:
        await terminate(client)
    assert info.value.status == 401
    assert "dev-token" not in str(info.value)
    assert api.call_count == 1


async def test_token_endpoint_error_description(routes: Routes, make_client: MakeClient, ccg: CCGAuth) -> None:
    """The token endpoint's OAuth error raises AuthenticationError with its description, no API call."""
    routes.post(TOKEN_URL).mock(
        return_value=httpx.Response(
            400,
            json={
                "error": "invalid_client",
                "error_description": "The client credentials are invalid",
            },
        )
    )
    api = routes.post(USERS_URL).mock(return_value=accepted())
    async with make_client(ccg) as client:
        with pytest.raises(AuthenticationError, match="The client credentials are invalid") as info:
            await terminate(client)
    assert info.value.code == "invalid_client"
    assert "very-secret" not in str(info.value)
    assert api.call_count == 0


async def test_token_endpoint_5xx_and_429_are_retried(
    routes: Routes, make_client: MakeClient, ccg: CCGAuth, clock: FakeClock
) -> None:
    """The token endpoint's own 429 and 5xx are retried like any call."""
    token = routes.post(TOKEN_URL).mock(
        side_effect=[
            box_error(503),
            httpx.Response(429, headers={"retry-after": "2"}),
            token_answer(),
        ]
    )
    routes.post(USERS_URL).mock(return_value=accepted())
    async with make_client(ccg) as client:
        await terminate(client)
    assert token.call_count == 3
    assert clock.sleeps == [1.0, 2.0]


async def test_token_failure_is_not_retried_by_the_api_call(
    routes: Routes, make_client: MakeClient, ccg: CCGAuth
) -> None:
    """A token endpoint that keeps failing is tried max_attempts times in all, not squared."""
    token = routes.post(TOKEN_URL).mock(return_value=box_error(500))
    async with make_client(ccg, retry=RetryPolicy(max_attempts=3, jitter=False)) as client:
        with pytest.raises(ServerError):
            await terminate(client)
    assert token.call_count == 3


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(httpx.Response(200, json={"expires_in": 3600}), id="no-token"),
        pytest.param(httpx.Response(200, json={"access_token": "", "expires_in": 3600}), id="empty-token"),
        pytest.param(httpx.Response(200, text="<html>"), id="not-json"),
    ],
)
async def test_unusable_token_answer_raises(
    routes: Routes, make_client: MakeClient, ccg: CCGAuth, answer: httpx.Response
) -> None:
    """A 200 from the token endpoint without a token raises AuthenticationError."""
    routes.post(TOKEN_URL).mock(return_value=answer)
    async with make_client(ccg) as client:
        with pytest.raises(AuthenticationError, match="access_token"):
            await terminate(client)


async def test_token_without_expires_in_lasts_an_hour(
    routes: Routes, make_client: MakeClient, ccg: CCGAuth, clock: FakeClock
) -> None:
    """A token answer without expires_in is taken to last Box's documented 60 minutes."""
    token = routes.post(TOKEN_URL).mock(
        side_effect=[httpx.Response(200, json={"access_token": "x"}), token_answer("y")]
    )
    routes.post(USERS_URL).mock(return_value=accepted())
    async with make_client(ccg) as client:
        await terminate(client)
        clock.advance(3000)
        await terminate(client)
        assert token.call_count == 1
        clock.advance(600)
        await terminate(client)
    assert token.call_count == 2


async def test_cancel_during_token_request_propagates_and_the_request_goes_on(
    routes: Routes, make_client: MakeClient, ccg: CCGAuth
) -> None:
    """Cancelling the call that started a token request raises CancelledError; the next call gets its token."""
    started, answer = asyncio.Event(), asyncio.Event()

    async def held(request: httpx.Request) -> httpx.Response:
        started.set()
        await answer.wait()
        return token_answer("tok-A")

    token = routes.post(TOKEN_URL).mock(side_effect=held)
    api = routes.post(USERS_URL).mock(return_value=accepted())
    async with make_client(ccg) as client:
        task = asyncio.create_task(terminate(client))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        answer.set()
        await terminate(client)
    assert token.call_count == 1
    assert api.calls.last.request.headers["authorization"] == "Bearer tok-A"


def test_reprs_hide_secrets(ccg: CCGAuth) -> None:
    """Neither auth repr shows its secret."""
    assert "very-secret" not in repr(ccg)
    assert repr(DeveloperTokenAuth("abc123")) == "DeveloperTokenAuth(token=***)"
    assert "abc123" not in repr(BoxClient(DeveloperTokenAuth("abc123")))


async def test_no_secret_in_logs(
    routes: Routes,
    make_client: MakeClient,
    ccg: CCGAuth,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Token refresh and retries log nothing secret."""
    routes.post(TOKEN_URL).mock(
        side_effect=[box_error(500), token_answer("tok-secret-1"), token_answer("tok-secret-2")]
    )
    routes.post(USERS_URL).mock(side_effect=[accepted(), box_error(401), accepted()])
    with caplog.at_level(logging.DEBUG):
        async with make_client(ccg) as client:
            await terminate(client)
            await terminate(client)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "refreshing the token once" in text
    for secret in ("very-secret", "tok-secret-1", "tok-secret-2"):
        assert secret not in text


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"client_id": "c", "client_secret": "s"}, "exactly one", id="no-subject"),
        pytest.param(
            {"client_id": "c", "client_secret": "s", "enterprise_id": "1", "user_id": "2"},
            "exactly one",
            id="two-subjects",
        ),
        pytest.param(
            {"client_id": "", "client_secret": "s", "enterprise_id": "1"},
            "client_id",
            id="empty-id",
        ),
        pytest.param(
            {"client_id": "c", "client_secret": " ", "enterprise_id": "1"},
            "client_secret",
            id="blank-secret",
        ),
        pytest.param(
            {"client_id": "c", "client_secret": "s", "enterprise_id": "x1"},
            "enterprise_id",
            id="bad-enterprise",
        ),
        pytest.param(
            {
                "client_id": "c",
                "client_secret": "s",
                "enterprise_id": "1",
                "token_url": "http://evil.example.com/t",
            },
            "token_url",
            id="http-token-url",
        ),
    ],
)
def test_ccg_arguments_are_checked(kwargs: dict[str, str], message: str) -> None:
    """Bad CCGAuth arguments raise at construction, naming the argument."""
    with pytest.raises((TypeError, ValueError), match=message):
        CCGAuth(**kwargs)


@pytest.mark.parametrize("token", ["", "   ", None, 5])
def test_developer_token_must_be_a_non_empty_str(token: Any) -> None:
    """DeveloperTokenAuth refuses an empty or non-str token."""
    with pytest.raises((TypeError, ValueError), match="token"):
        DeveloperTokenAuth(token)


async def test_deadline_spent_on_the_token_request_sends_nothing(
    routes: Routes, make_client: MakeClient, ccg: CCGAuth, clock: FakeClock
) -> None:
    """When getting the token used up the call's deadline, the API request is not sent."""

    def slow_token(request: httpx.Request) -> httpx.Response:
        clock.advance(31)
        return token_answer()

    routes.post(TOKEN_URL).mock(side_effect=slow_token)
    api = routes.post(USERS_URL).mock(return_value=accepted())
    async with make_client(ccg, retry=RetryPolicy(total_timeout=30)) as client:
        with pytest.raises(BoxTimeoutError, match="deadline passed"):
            await terminate(client)
    assert api.call_count == 0
