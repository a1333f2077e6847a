"""Issue 10, tokens: single-flight fetches that survive their caller's cancellation, are shared when they
fail, and never put a malformed token on the wire."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from box_sessions import (
    AuthenticationError,
    BoxClient,
    CCGAuth,
    DeveloperTokenAuth,
    InMemoryTokenStore,
    OAuth2Auth,
    RetryPolicy,
    ServerError,
    SessionTerminationMessage,
)

from .support.hostile import Action, Answer, HostileServer, Request, accepted, oauth_error, serve, token_answer

USERS = "/2.0/users/terminate_sessions"
TOKEN = "/oauth2/token"
TOKEN_DELAY = 0.5  # the token endpoint's answer time: long enough to cancel a caller during it
FAST_RETRY = RetryPolicy(initial_backoff=0.01, max_backoff=0.02, total_timeout=20)
WAITERS = 5


async def terminate_one(client: BoxClient, user_id: str = "1") -> SessionTerminationMessage:
    return await client.session_termination.terminate_users_sessions(user_ids=[user_id])


async def until(condition: Any, seconds: float = 3.0) -> None:
    """Wait until ``condition()`` is true; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


class RefreshEndpoint:
    """Box's OAuth 2.0 behaviour: each refresh token works once; the API accepts only issued tokens.

    Called in the server's thread only; tests read its lists once the calls are over.
    """

    def __init__(self) -> None:
        self.refresh_tokens_seen: list[str] = []
        self.issued: set[str] = set()

    def __call__(self, request: Request) -> Action:
        if request.path == TOKEN:
            refresh = request.form().get("refresh_token", "")
            spent = refresh in self.refresh_tokens_seen
            self.refresh_tokens_seen.append(refresh)
            if spent:
                return oauth_error(400, "invalid_grant", "Invalid refresh token")
            n = len(self.refresh_tokens_seen)
            self.issued.add(f"acc3ss-{n}")
            return token_answer(f"acc3ss-{n}", refresh_token=f"r3fr3sh-{n + 1}", delay=TOKEN_DELAY)
        if request.headers.get("authorization", "").removeprefix("Bearer ") in self.issued:
            return accepted()
        return Answer(401)


async def cancel_the_leader(client: BoxClient, server: HostileServer) -> list[object]:
    """Start a call, then others; cancel the first while its token request is in flight.

    Asserts that the cancelled call raised CancelledError at once; returns the others' outcomes.
    """
    leader = asyncio.ensure_future(terminate_one(client))
    await until(lambda: server.count(TOKEN) == 1)
    waiters = [asyncio.ensure_future(terminate_one(client, str(i))) for i in range(2, WAITERS + 2)]
    await asyncio.sleep(0.05)  # the waiters now wait for the leader's token
    leader.cancel()
    cancelled_at = time.monotonic()
    with pytest.raises(asyncio.CancelledError):
        await leader
    assert time.monotonic() - cancelled_at < 0.2
    return await asyncio.wait_for(asyncio.gather(*waiters, return_exceptions=True), 10)


async def test_an_oauth2_refresh_survives_the_cancellation_of_its_caller() -> None:
    """The refresh outlives the cancelled call that started it: waiters succeed, the store holds r2, r1 is sent once."""
    endpoint = RefreshEndpoint()
    store = InMemoryTokenStore()
    auth = OAuth2Auth(client_id="cid", client_secret="very-secret", refresh_token="r3fr3sh-1", token_store=store)
    with serve(endpoint) as server:
        async with BoxClient(auth, base_url=server.url, rate_limit=None, retry=FAST_RETRY) as client:
            outcomes = await cancel_the_leader(client, server)
            assert all(isinstance(outcome, SessionTerminationMessage) for outcome in outcomes), outcomes
            stored = await store.load()
            assert stored is not None
            assert stored.refresh_token == "r3fr3sh-2"
            assert isinstance(await asyncio.wait_for(terminate_one(client, "99"), 5), SessionTerminationMessage)
    assert endpoint.refresh_tokens_seen.count("r3fr3sh-1") == 1


async def test_a_ccg_token_request_survives_the_cancellation_of_its_caller() -> None:
    """The CCG token request goes on when the call that started it is cancelled: one request serves every waiter."""

    def handler(request: Request) -> Action:
        if request.path == TOKEN:
            return token_answer(f"acc3ss-{request.number}", delay=TOKEN_DELAY)
        return accepted()

    auth = CCGAuth(client_id="cid", client_secret="very-secret", enterprise_id="42")
    with serve(handler) as server:
        async with BoxClient(auth, base_url=server.url, rate_limit=None, retry=FAST_RETRY) as client:
            outcomes = await cancel_the_leader(client, server)
        token_requests = server.count(TOKEN)
    assert all(isinstance(outcome, SessionTerminationMessage) for outcome in outcomes), outcomes
    assert token_requests == 1


async def test_a_refused_token_request_is_shared_by_its_waiters() -> None:
    """50 concurrent calls and a token endpoint answering 400 invalid_client: one token request in all."""

    def handler(request: Request) -> Action:
        if request.path == TOKEN:
            return oauth_error(400, "invalid_client", "The client credentials are invalid", delay=0.05)
        return accepted()

    auth = CCGAuth(client_id="cid", client_secret="very-secret", enterprise_id="42")
    with serve(handler) as server:
        async with BoxClient(auth, base_url=server.url, rate_limit=None, retry=FAST_RETRY) as client:
            outcomes = await asyncio.wait_for(
                asyncio.gather(*(terminate_one(client, str(i)) for i in range(50)), return_exceptions=True), 10
            )
        token_requests, api_requests = server.count(TOKEN), server.count(USERS)
    assert all(isinstance(outcome, AuthenticationError) for outcome in outcomes), outcomes[:3]
    assert api_requests == 0
    assert token_requests == 1


async def test_a_failing_token_request_is_retried_once_for_all_its_waiters() -> None:
    """50 concurrent calls and a token endpoint answering 503, two attempts: 2 token requests, 50 ServerErrors."""

    def handler(request: Request) -> Action:
        if request.path == TOKEN:
            return Answer(503, b"", delay=0.02)
        return accepted()

    auth = CCGAuth(client_id="cid", client_secret="very-secret", enterprise_id="42")
    retry = RetryPolicy(max_attempts=2, initial_backoff=0.01, max_backoff=0.01, total_timeout=20)
    with serve(handler) as server:
        async with BoxClient(auth, base_url=server.url, rate_limit=None, retry=retry) as client:
            outcomes = await asyncio.wait_for(
                asyncio.gather(*(terminate_one(client, str(i)) for i in range(50)), return_exceptions=True), 10
            )
        token_requests = server.count(TOKEN)
    assert all(isinstance(outcome, ServerError) for outcome in outcomes), outcomes[:3]
    assert token_requests == 2


# -- malformed tokens ---------------------------------------------------------------------------


async def test_a_developer_token_is_stripped() -> None:
    """DeveloperTokenAuth("dev-token-123\\n") sends "Bearer dev-token-123"."""
    with serve(lambda request: accepted()) as server:
        async with BoxClient(
            DeveloperTokenAuth("dev-token-123\n"), base_url=server.url, rate_limit=None, retry=FAST_RETRY
        ) as client:
            message = await asyncio.wait_for(terminate_one(client), 10)
        sent = [request.headers.get("authorization") for request in server.requests(USERS)]
    assert isinstance(message, SessionTerminationMessage)
    assert sent == ["Bearer dev-token-123"]


@pytest.mark.parametrize(
    "token", ["dev-token 123", "dev-token\x00123", "dev-token-é"], ids=["space", "nul", "non-ascii"]
)
def test_a_developer_token_that_cannot_be_sent_is_refused_at_construction(token: str) -> None:
    """A developer token with a space, a NUL or a non-ASCII character raises ValueError without quoting it."""
    with pytest.raises(ValueError, match="token") as raised:
        DeveloperTokenAuth(token)
    assert token not in str(raised.value)
    assert token.strip() not in str(raised.value)


@pytest.mark.parametrize("token", ["acc3ss tok", "acc3ss\ntok", "acc3ss-tok-é"], ids=["space", "newline", "non-ascii"])
async def test_a_malformed_access_token_from_the_token_endpoint_is_an_authentication_error(token: str) -> None:
    """A token answer whose access token cannot be a header value raises AuthenticationError at once, unretried."""

    def handler(request: Request) -> Action:
        if request.path == TOKEN:
            return token_answer(token)
        return accepted()

    auth = CCGAuth(client_id="cid", client_secret="very-secret", enterprise_id="42")
    with serve(handler) as server:
        async with BoxClient(auth, base_url=server.url, rate_limit=None, retry=FAST_RETRY) as client:
            with pytest.raises(AuthenticationError) as raised:
                await asyncio.wait_for(terminate_one(client), 10)
        token_requests, api_requests = server.count(TOKEN), server.count(USERS)
    assert token_requests == 1
    assert api_requests == 0
    assert token not in str(raised.value)
    assert "acc3ss" not in str(raised.value)
