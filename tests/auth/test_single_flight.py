"""One token request serves every caller waiting on it, survives the caller that started it, and shares its failure.

Each test runs against a real HTTP server on 127.0.0.1 (FakeBox, or a small handler in front of it),
so a cancelled caller really hangs up its connection, as a web request that went away does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

import attrs
import pytest

from box_sessions import (
    AuthenticationError,
    BoxClient,
    BoxError,
    BoxTimeoutError,
    CCGAuth,
    InMemoryTokenStore,
    OAuth2Auth,
    RetryPolicy,
    ServerError,
)
from box_sessions.testing import FakeBox, FakeClock, LoopbackServer, Reply, Request

from ..conftest import (
    BOUND,
    auth_of_kind,
    box_error_body,
    fake_ccg,
    json_reply,
    server_tasks,
    tasks_in,
    terminate,
    until,
)
from ..support.http import httpx

TOKEN_PATH = "/oauth2/token"
TOKEN_URL_FOR_UNIT = "https://api.box.com/oauth2/token"
#: The type of the ``held`` fixture.
Held = Callable[..., Awaitable[tuple["HeldTokenEndpoint", LoopbackServer]]]
#: Callers that wait on the token request of one that is then cancelled.
WAITERS = 5


@attrs.define
class HeldTokenEndpoint:
    """FakeBox behind a token endpoint that answers only when released.

    ``spend_first``: FakeBox handles the request (and spends a refresh token) as soon as it
    arrives, and only the answer is held, as Box does. Otherwise the request is held before
    FakeBox sees it.
    """

    fake: FakeBox
    spend_first: bool = True
    arrived: asyncio.Event = attrs.field(factory=asyncio.Event)
    release: asyncio.Event = attrs.field(factory=asyncio.Event)
    token_requests: int = 0

    async def handle(self, request: Request) -> Reply:
        if not request.path.startswith(TOKEN_PATH):
            return await self.fake.handle(request)
        self.token_requests += 1
        reply = await self.fake.handle(request) if self.spend_first else None
        self.arrived.set()
        await self.release.wait()
        return reply if reply is not None else await self.fake.handle(request)


@pytest.fixture
async def held() -> AsyncIterator[Callable[..., Awaitable[tuple[HeldTokenEndpoint, LoopbackServer]]]]:
    """Start a `HeldTokenEndpoint` on 127.0.0.1: ``endpoint, server = await held(fake)``."""
    servers: list[LoopbackServer] = []

    async def start(fake: FakeBox, *, spend_first: bool = True) -> tuple[HeldTokenEndpoint, LoopbackServer]:
        endpoint = HeldTokenEndpoint(fake, spend_first=spend_first)
        server = LoopbackServer(endpoint.handle)
        await server.start()
        servers.append(server)
        return endpoint, server

    yield start
    for server in servers:
        await server.stop()


# -- the token request outlives the caller that started it ----------------------------------------------


@pytest.mark.parametrize("kind", ["oauth2", "ccg", "jwt"])
async def test_token_request_survives_its_cancelled_caller(kind: str, held: Held, rsa_keys: tuple[str, str]) -> None:
    """The caller that started a token request is cancelled mid-request: those waiting and later calls get its token."""
    fake = FakeBox(jwt_public_key=rsa_keys[1])
    endpoint, server = await held(fake)
    first_refresh = fake.issue_refresh_token()
    auth = auth_of_kind(
        kind,
        private_key=rsa_keys[0],
        client_id=fake.client_id,
        client_secret=fake.client_secret,
        refresh_token=first_refresh,
    )
    async with BoxClient(auth, base_url=server.url, rate_limit=None) as client:
        leader = asyncio.create_task(terminate(client, "1"))
        await asyncio.wait_for(endpoint.arrived.wait(), BOUND)
        waiters = [asyncio.create_task(terminate(client, str(user))) for user in range(2, WAITERS + 2)]
        # The leader's request and every waiter's wait in get_token, for the one token request.
        await until(lambda: tasks_in("get_token") == len(waiters) + 1)
        leader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(leader, BOUND)
        assert not endpoint.release.is_set()  # the cancelled caller did not wait for the answer
        endpoint.release.set()
        await asyncio.wait_for(asyncio.gather(*waiters), BOUND)
        await asyncio.wait_for(terminate(client, "99"), BOUND)
    assert endpoint.token_requests == 1
    assert fake.status_counts[400] == 0  # no invalid_grant: the new refresh token was not lost
    if isinstance(auth, OAuth2Auth):
        assert fake.spent_refresh_tokens == 1  # the first refresh token was sent once
        saved = await auth.token_store.load()
        assert saved is not None
        assert saved.refresh_token not in (first_refresh, None)  # the new pair is kept
    assert sorted(fake.terminated["user_ids"], key=int) == [*(str(user) for user in range(2, WAITERS + 2)), "99"]


async def test_oauth2_refresh_of_a_cancelled_caller_is_saved(
    held: Held,
) -> None:
    """With no one else waiting, the cancelled caller's refresh still ends and its new pair is saved in the store."""
    fake = FakeBox()
    endpoint, server = await held(fake)
    first_refresh = fake.issue_refresh_token()
    store = InMemoryTokenStore()
    auth = OAuth2Auth(
        client_id=fake.client_id, client_secret=fake.client_secret, refresh_token=first_refresh, token_store=store
    )
    async with BoxClient(auth, base_url=server.url, rate_limit=None) as client:
        leader = asyncio.create_task(terminate(client))
        await asyncio.wait_for(endpoint.arrived.wait(), BOUND)
        leader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(leader, BOUND)
        endpoint.release.set()
        await asyncio.wait_for(auth.drain(), BOUND)
        saved = await store.load()
        assert saved is not None
        assert saved.refresh_token not in (first_refresh, None)
        await asyncio.wait_for(terminate(client), BOUND)
    assert (fake.spent_refresh_tokens, fake.status_counts[400], endpoint.token_requests) == (1, 0, 1)


async def test_closing_the_client_lets_a_token_request_in_flight_end(held: Held) -> None:
    """A client closed while its cancelled caller's refresh is in flight waits for it: the new pair is saved."""
    fake = FakeBox()
    endpoint, server = await held(fake)
    store = InMemoryTokenStore()
    auth = OAuth2Auth(
        client_id=fake.client_id,
        client_secret=fake.client_secret,
        refresh_token=fake.issue_refresh_token(),
        token_store=store,
    )
    client = BoxClient(auth, base_url=server.url, rate_limit=None)
    async with client:
        leader = asyncio.create_task(terminate(client))
        await asyncio.wait_for(endpoint.arrived.wait(), BOUND)
        leader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await leader
        closing = asyncio.create_task(client.aclose())
        await until(lambda: client.is_closed)  # the client is closing, with the refresh's answer still held
        assert not closing.done()
        endpoint.release.set()
        await asyncio.wait_for(closing, BOUND)
    saved = await store.load()
    assert saved is not None
    assert saved.access_token is not None  # the refresh ended and was saved before the client closed
    assert fake.spent_refresh_tokens == 1


async def test_drain_cancels_a_token_request_that_does_not_end(held: Held, caplog: pytest.LogCaptureFixture) -> None:
    """drain(timeout=) waits that long for a token request, then cancels it with a warning; its waiters get BoxError."""
    fake = FakeBox()
    endpoint, server = await held(fake, spend_first=False)
    auth = fake_ccg(fake)
    async with BoxClient(auth, base_url=server.url, rate_limit=None) as client:
        tasks_before = asyncio.all_tasks()
        leader = asyncio.create_task(terminate(client))
        await asyncio.wait_for(endpoint.arrived.wait(), BOUND)
        waiter = asyncio.create_task(terminate(client))
        leader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await leader
        before = asyncio.get_running_loop().time()
        await asyncio.wait_for(auth.drain(timeout=0.2), BOUND)
        # A lower bound only, which no load can break: drain waited its timeout before cancelling.
        assert asyncio.get_running_loop().time() - before > 0.15
        with pytest.raises(BoxError, match="token request was cancelled"):  # not CancelledError: it was not
            await asyncio.wait_for(waiter, BOUND)
        assert asyncio.all_tasks() - tasks_before - server_tasks(server) == set()  # the token request was ended
    assert any(r.levelno == logging.WARNING and "cancelled" in r.getMessage() for r in caplog.records)


async def test_a_caller_waits_for_a_token_request_only_until_its_deadline(
    held: Held,
) -> None:
    """A caller waiting on another's token request past its deadline gets BoxTimeoutError; the request goes on."""
    fake = FakeBox()
    endpoint, server = await held(fake, spend_first=False)
    auth = fake_ccg(fake)
    async with (
        BoxClient(auth, base_url=server.url, rate_limit=None) as patient,
        BoxClient(auth, base_url=server.url, rate_limit=None, retry=RetryPolicy(total_timeout=0.3)) as hurried,
    ):
        leader = asyncio.create_task(terminate(patient, "1"))
        try:
            await asyncio.wait_for(endpoint.arrived.wait(), BOUND)
            # The call's wall-clock limit and the wait for the token request end together; either
            # says the deadline passed. The token answer is held until after it: the call cannot
            # have waited for the request to end.
            with pytest.raises(BoxTimeoutError, match="deadline"):
                await asyncio.wait_for(terminate(hurried, "2"), BOUND)
            assert not leader.done()  # the request goes on, and its caller still waits for it
        finally:
            endpoint.release.set()
        await asyncio.wait_for(leader, BOUND)
    assert endpoint.token_requests == 1
    assert fake.terminated["user_ids"] == ["1"]


# -- a failed token request is shared -------------------------------------------------------------------


async def test_refused_credentials_make_one_token_request_for_all_waiting() -> None:
    """50 concurrent calls with refused credentials (400 invalid_client) make one token request; all get its error."""
    fake = FakeBox()
    auth = fake_ccg(fake, client_secret="wrong-secret")
    async with fake.serve() as url, BoxClient(auth, base_url=url, rate_limit=None) as client:
        results = await asyncio.wait_for(
            asyncio.gather(*(terminate(client, str(i)) for i in range(50)), return_exceptions=True), BOUND
        )
        assert fake.token_requests == 1
        assert all(isinstance(r, AuthenticationError) and r.code == "invalid_client" for r in results)
        assert fake.api_requests() == []  # no call was sent without a token
        with pytest.raises(AuthenticationError):  # a later call tries again
            await asyncio.wait_for(terminate(client), BOUND)
    assert fake.token_requests == 2


async def test_failing_token_endpoint_is_retried_once_for_all_waiting(ccg: CCGAuth) -> None:
    """50 concurrent calls against a token endpoint answering 503 make one request per attempt (5), not 250."""
    token_requests = 0

    async def unavailable(request: Request) -> Reply:
        nonlocal token_requests
        token_requests += 1
        return json_reply(503, box_error_body(503, "unavailable", "down"))

    retry = RetryPolicy(max_attempts=5, jitter=False)
    async with (
        LoopbackServer(unavailable) as server,
        BoxClient(ccg, base_url=server.url, rate_limit=None, retry=retry, clock=FakeClock()) as client,
    ):
        results = await asyncio.wait_for(
            asyncio.gather(*(terminate(client, str(i)) for i in range(50)), return_exceptions=True), BOUND
        )
    assert token_requests == 5
    assert all(isinstance(r, ServerError) and r.status == 503 for r in results)


@pytest.mark.parametrize(("value", "error"), [(-1, ValueError), ("1", TypeError), (True, TypeError)])
async def test_drain_timeout_is_checked(value: object, error: type[Exception], ccg: CCGAuth) -> None:
    """drain(timeout=) must be a non-negative number of seconds."""
    with pytest.raises(error, match="timeout"):
        await ccg.drain(timeout=value)  # type: ignore[arg-type]


async def test_a_deadline_already_passed_asks_for_no_token(ccg: CCGAuth) -> None:
    """get_token with a deadline already passed raises BoxTimeoutError without starting a token request."""
    requests = 0

    async def post(url: httpx.URL, form: Mapping[str, str]) -> httpx.Response:
        nonlocal requests
        requests += 1
        raise AssertionError("no token request expected")

    clock = FakeClock()
    with pytest.raises(BoxTimeoutError, match="deadline passed"):
        await ccg.get_token(post, httpx.URL(TOKEN_URL_FOR_UNIT), clock, deadline=clock.monotonic() - 1)
    assert requests == 0
