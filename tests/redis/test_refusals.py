"""Issue 17, refusals row: a Redis that answers reads and refuses writes, and an ACL user missing a command.

A read-only replica (or a client left on a demoted master) answers ``READONLY``, a full Redis
under ``noeviction`` answers ``OOM``, an ACL user without a command answers ``NOPERM`` (from inside
a script, Redis 7.0 says only "can't run this command"). The reading scripts still succeed, so
the share flaps between "failed" and "answers again". The promise: one WARNING per kind of
refusal, naming what Redis refused (and the command), no "answers again" while writes fail, and
no call failing because of Redis.
"""

from __future__ import annotations

import asyncio
import traceback

import pytest

from box_sessions import BoxClient, OAuth2Tokens, RateLimit, SharedStateError, SharedToken
from box_sessions.redis import RedisShare
from box_sessions.testing import FakeBox, FakeClock, LoopbackServer, Reply, Request

from ..support.box_calls import (
    BOUND,
    answers_again,
    ccg,
    oauth2,
    outcome,
    spent_refresh_tokens_sent,
    terminate,
    warnings_of,
)
from ..support.redis_acl import add_acl_user
from ..support.redis_memory import fill_memory, maxmemory_args
from ..support.redis_replica import ReplicatedPair
from .conftest import StartRedis

pytestmark = pytest.mark.redis

#: Ids in the paced job, one per request: the client's fake clock passes several seconds of
#: pacing, in which the share is tried again each second.
IDS = 60

#: Each kind of refusal, with the words its WARNING must hold (case aside).
REFUSALS = {
    "readonly-replica": ("READONLY",),
    "noeviction-oom": ("OOM",),
    "acl-without-pexpire": ("NOPERM", "pexpire"),
    "acl-without-time": ("NOPERM", "time"),
    "acl-without-hincrby": ("NOPERM", "hincrby"),
    "acl-without-zrange": ("NOPERM", "zrange"),
}


def refusing_url(kind: str, start_redis: StartRedis, request: pytest.FixtureRequest) -> str:
    """The URL of a Redis that refuses the share's writes as ``kind`` says."""
    if kind == "readonly-replica":
        pair: ReplicatedPair = request.getfixturevalue("replicated_pair")
        return pair.replica.url
    if kind == "noeviction-oom":
        server = start_redis(maxmemory_args("4mb", "noeviction"))
        assert fill_memory(server).refused
        return server.url
    server = start_redis()
    return add_acl_user(server, without=(kind.removeprefix("acl-without-"),))


@pytest.mark.parametrize("kind", list(REFUSALS))
async def test_a_refusing_redis_is_warned_about_once_by_name_and_never_answers_again(
    kind: str, start_redis: StartRedis, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    """A paced CCG job through a Redis that refuses writes: all ids go, one WARNING naming the refusal, no flapping."""
    url = refusing_url(kind, start_redis, request)
    fake = FakeBox()
    ids = [str(n) for n in range(1, IDS + 1)]
    async with (
        fake.serve() as base,
        RedisShare(url) as share,
        BoxClient(ccg(fake), base_url=base, rate_limit=RateLimit(), shared=share, clock=FakeClock()) as client,
    ):
        report = await asyncio.wait_for(
            client.session_termination.terminate(user_ids=ids, batch_size=1, max_concurrency=4), BOUND
        )
    assert report.ok, report
    assert report.terminated_count == IDS
    warnings = warnings_of(caplog)
    assert answers_again(caplog) == [], f"{len(warnings)} warnings, e.g. {warnings[:2]}"
    assert len(warnings) == 1, warnings
    assert all(word.lower() in warnings[0].lower() for word in REFUSALS[kind]), warnings[0]


async def test_an_acl_without_pexpire_never_lets_a_second_refresh_through(start_redis: StartRedis) -> None:
    """ACL without PEXPIRE: the OAuth 2.0 lock is renewed all the same, one process refreshes, none spends a token.

    (Once, the first process refreshed holding a lock it could not renew; the lock expired under
    it and the second refreshed with the refresh token Box had just spent.) The lock's lease is in
    its value now, renewed with SET: the second waits for the lock while the first's refresh is
    held at Box, past its ``lock_wait``, and gives up without sending anything.
    """
    server = start_redis()
    url = add_acl_user(server, without=("pexpire",))
    fake = FakeBox()
    refreshes: list[asyncio.Event] = [asyncio.Event(), asyncio.Event()]
    let_first_answer = asyncio.Event()

    async def slow_first_refresh(request: Request) -> Reply:
        reply = await fake.handle(request)  # Box spends the refresh token on receipt
        if request.path.startswith("/oauth2/token"):
            arrived = next(event for event in refreshes if not event.is_set())
            arrived.set()
            if arrived is refreshes[0]:
                await asyncio.wait_for(let_first_answer.wait(), BOUND)
        return reply

    # Short times: the lock is renewed every 0.2 s while held, and the second waits 2 s at most.
    async with (
        LoopbackServer(slow_first_refresh) as box,
        RedisShare(url, lock_ttl=0.6, lock_wait=2.0) as first_share,
        RedisShare(url, lock_ttl=0.6, lock_wait=2.0) as second_share,
    ):
        await first_share.token_store("user-42").save(OAuth2Tokens(refresh_token=fake.issue_refresh_token()))
        first = BoxClient(oauth2(fake, first_share.token_store("user-42")), base_url=box.url, rate_limit=None)
        second = BoxClient(oauth2(fake, second_share.token_store("user-42")), base_url=box.url, rate_limit=None)
        async with first, second:
            first_call = asyncio.create_task(outcome(terminate(first, "1")))
            first_refresh = asyncio.create_task(refreshes[0].wait())
            # Until the first has refreshed holding the lock (the old failure), or has ended.
            await asyncio.wait({first_call, first_refresh}, timeout=BOUND, return_when=asyncio.FIRST_COMPLETED)
            first_refresh.cancel()
            second_call = asyncio.create_task(outcome(terminate(second, "2")))
            second_refresh = asyncio.create_task(refreshes[1].wait())
            await asyncio.wait({second_call, second_refresh}, timeout=BOUND, return_when=asyncio.FIRST_COMPLETED)
            second_refresh.cancel()
            let_first_answer.set()
            outcomes = [await first_call, await second_call]
    assert spent_refresh_tokens_sent(fake) == 0
    assert outcomes[0] == "ok", outcomes
    assert outcomes[1].startswith("BoxTimeoutError: another process has held the OAuth 2.0 lock"), outcomes
    assert fake.token_requests == 1  # the first's refresh alone: the lock held under it


async def test_an_error_answer_quoting_the_command_leaks_no_token_through_the_chain(start_redis: StartRedis) -> None:
    """Redis quotes an unknown command's arguments: a failed save's chain keeps what it said, not the token."""
    server = start_redis(["--rename-command", "SET", ""])  # SET unknown: Redis answers quoting the arguments
    token = "acc3ss-token-in-a-command"
    async with RedisShare(server.url) as share:
        with pytest.raises(SharedStateError) as raised:
            await share.tokens.save("app", SharedToken(access_token=token, expires_at=9e9, refresh_at=9e9), ttl=60)
    shown = "".join(traceback.format_exception(type(raised.value), raised.value, raised.value.__traceback__))
    assert "storing a token" in shown
    assert token not in shown
    assert "unknown command" in str(raised.value.__cause__)  # what Redis said is kept, not what it quoted
