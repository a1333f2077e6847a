"""`BoxClient.with_options`: per-call options over the parent's connections, token, pacing and cool-down."""

from __future__ import annotations

import pytest

from box_sessions import (
    BoxClient,
    BoxTimeoutError,
    CCGAuth,
    DeveloperTokenAuth,
    RateLimit,
    RateLimitError,
    RetryPolicy,
    ServerError,
)
from box_sessions.testing import FakeBox, FakeClock

from ..support.http import httpx


def ccg(fake: FakeBox) -> CCGAuth:
    return CCGAuth(client_id=fake.client_id, client_secret=fake.client_secret, enterprise_id="1")


async def test_the_child_shares_the_token_and_the_connections() -> None:
    """A parent and a child with other options make one token request between them, over one pool."""
    fake = FakeBox()
    async with fake.client(ccg(fake), rate_limit=None) as parent:
        child = parent.with_options(timeout=5, retry=RetryPolicy(max_attempts=1))
        await parent.session_termination.terminate_users_sessions(user_ids=["1"])
        await child.session_termination.terminate_users_sessions(user_ids=["2"])
        assert child._http is parent._http
    assert fake.token_requests == 1
    assert fake.terminated["user_ids"] == ["1", "2"]


async def test_the_child_retries_by_its_own_policy() -> None:
    """A child with max_attempts=1 fails on the first 503 where its parent retries it."""
    answers = iter([503, 202, 503])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/oauth2/token"):
            return httpx.Response(200, json={"access_token": "acc3ss-1", "expires_in": 3600})
        return httpx.Response(next(answers), json={})

    clock = FakeClock()
    async with BoxClient(
        CCGAuth(client_id="cid", client_secret="very-secret", enterprise_id="1"),
        transport=httpx.MockTransport(handler),
        clock=clock,
        rate_limit=None,
        retry=RetryPolicy(jitter=False),
    ) as parent:
        await parent.session_termination.terminate_users_sessions(user_ids=["1"])  # 503, then 202
        child = parent.with_options(retry=RetryPolicy(max_attempts=1))
        with pytest.raises(ServerError):
            await child.session_termination.terminate_users_sessions(user_ids=["2"])  # 503, not retried
    assert clock.sleeps == [1.0]  # the parent's one back-off


async def test_the_child_has_its_own_deadline() -> None:
    """A child whose total_timeout is shorter than the cool-down refuses at once; the parent waits it out."""
    fake, clock = FakeBox(), FakeClock()
    async with fake.client(clock=clock, rate_limit=RateLimit()) as parent:
        child = parent.with_options(retry=RetryPolicy(total_timeout=10))
        await parent._sender.pacer.record(None, 429, cooldown=30.0)  # a 429 of another request, 30 s of quiet
        with pytest.raises(RateLimitError, match="left before this call's deadline"):
            await child.session_termination.terminate_users_sessions(user_ids=["1"])
        assert clock.sleeps == []
        await parent.session_termination.terminate_users_sessions(user_ids=["2"])
    assert clock.sleeps == [pytest.approx(30.0)]
    assert fake.terminated["user_ids"] == ["2"]


async def test_a_429_seen_by_the_child_holds_the_parent() -> None:
    """Child and parent pace together: the child's 429 starts the cool-down the parent then waits out."""
    fake, clock = FakeBox(rate_limit=60, burst=1, integer_retry_after=False), FakeClock()
    fake.clock = clock
    async with fake.client(clock=clock, rate_limit=None) as parent:
        child = parent.with_options(retry=RetryPolicy(max_attempts=1))
        await parent.session_termination.terminate_users_sessions(user_ids=["1"])  # takes the bucket's token
        with pytest.raises(RateLimitError):
            await child.session_termination.terminate_users_sessions(user_ids=["2"])  # 429, retry-after ~1 s
        await parent.session_termination.terminate_users_sessions(user_ids=["3"])
    assert len(clock.sleeps) == 1
    assert 0.5 < clock.sleeps[0] <= 1.0  # the parent waited out the child's cool-down, and was not refused
    assert fake.terminated["user_ids"] == ["1", "3"]


async def test_the_child_acts_as_another_user() -> None:
    """as_user= sets Box's As-User header on the child's calls only; as_user=None clears it."""
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/oauth2/token"):
            return httpx.Response(200, json={"access_token": "acc3ss-1", "expires_in": 3600})
        seen.append(request.headers.get("as-user"))
        return httpx.Response(202, json={})

    auth = CCGAuth(client_id="cid", client_secret="very-secret", enterprise_id="1")
    async with BoxClient(auth, transport=httpx.MockTransport(handler), as_user=7, rate_limit=None) as parent:
        for client in (parent, parent.with_options(as_user="42"), parent.with_options(as_user=None)):
            await client.session_termination.terminate_users_sessions(user_ids=["1"])
    assert seen == ["7", "42", None]


async def test_closing_the_child_leaves_the_parent_open() -> None:
    """A closed child refuses calls; its parent, its pool and its token go on."""
    fake = FakeBox()
    async with fake.client(rate_limit=None) as parent:
        child = parent.with_options(timeout=2)
        await child.aclose()
        assert child.is_closed
        with pytest.raises(RuntimeError, match="closed"):
            child.session_termination  # noqa: B018 - the property refuses
        await parent.session_termination.terminate_users_sessions(user_ids=["1"])
        assert not parent.is_closed
    assert fake.terminated["user_ids"] == ["1"]


async def test_closing_the_parent_ends_the_child() -> None:
    """Once the parent is closed the child is too, and no new child can be made of it."""
    fake = FakeBox()
    parent = fake.client(rate_limit=None)
    child = parent.with_options(timeout=2)
    await parent.aclose()
    assert child.is_closed
    with pytest.raises(RuntimeError, match="closed"):
        child.session_termination  # noqa: B018 - the property refuses
    with pytest.raises(RuntimeError, match="closed"):
        parent.with_options(timeout=2)


@pytest.mark.parametrize(
    ("options", "error", "named"),
    [
        pytest.param({"retry": 3}, TypeError, "retry", id="retry"),
        pytest.param({"timeout": "5"}, TypeError, "timeout", id="timeout"),
        pytest.param({"timeout": -1}, ValueError, "timeout", id="negative-timeout"),
        pytest.param({"as_user": "abc"}, ValueError, "as_user", id="as-user"),
    ],
)
async def test_bad_options_are_refused_by_name(options: dict[str, object], error: type[Exception], named: str) -> None:
    """A wrong option is an error naming it, before anything is sent."""
    async with FakeBox().client() as parent:
        with pytest.raises(error, match=named):
            parent.with_options(**options)  # type: ignore[arg-type]


async def test_a_deadline_bounds_the_childs_whole_call() -> None:
    """The child's total_timeout bounds its call in wall-clock time even when the answer never comes."""
    fake = FakeBox(stall_rate=1.0, stall_seconds=30)
    async with (
        fake.serve() as url,
        BoxClient(DeveloperTokenAuth(fake.developer_token), base_url=url, rate_limit=None) as parent,
    ):
        child = parent.with_options(retry=RetryPolicy(total_timeout=0.5, max_attempts=1))
        with pytest.raises(BoxTimeoutError):
            await child.session_termination.terminate_users_sessions(user_ids=["1"])
